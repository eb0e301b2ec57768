"""AU intensities read from a face photo with LibreFace's AU network (ONNX): the scale FineFace's
training labels and the paper's AU error were measured on.

Each photo: the largest face (buffalo_l's detector), aligned as LibreFace was trained
(alignment.py), one run of the network, twelve intensities in 0..5 named as ours.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..aus import AU_NAMES
from ..errors import CheckpointError, InvalidInputError, NoFaceError
from ..hub import weights
from ..hub.model_sources import AU_READER, DETECTOR_FILE
from ..hub.pinned import pinned_path, sha256_of
from .alignment import INPUT_SIDE, aligned_face, network_input
from .detection import DetectedFace, Detection, Provider, default_providers, largest_face
from .model_pack import find_model_pack, pack_shown
from .photos import Photo, load_rgb, photo_label

INPUT_NAME, OUTPUT_NAME = "image", "AUs"
# The network's outputs, in its order: DISFA's twelve AUs (LibreFace's export notebook and data.py, and
# OpenSense's ActionUnitIntensityOutput, list them so).
# Mapped to ours by name, so that a change of either order cannot swap two AUs silently.
OUTPUT_AUS = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17", "AU20", "AU25", "AU26")
# The graph ends in a sigmoid; LibreFace's authors scale it by 5 and clamp to 0..5 (OpenSense).
MAX_INTENSITY = 5.0


@dataclass(frozen=True)
class AUReading:
    """The twelve intensities (0..5, our AU names and order) of the face used in one photo."""

    aus: dict[str, float]
    face: DetectedFace


class AUReader:
    """Reads the expression of the largest face in each photo; the models load (LibreFace's is fetched when
    missing) on the first read, or on load()."""

    def __init__(self, model: str | Path | None = None, face_pack: str | Path | None = None,
                 providers: list[Provider] | None = None, det_size: tuple[int, int] = (640, 640)) -> None:
        self.model_path = Path(model) if model is not None else None  # None: the pinned file, found on load
        self.pack = find_model_pack(face_pack)
        self.providers = list(providers) if providers is not None else default_providers()
        self.det_size = det_size
        self._models: tuple[object, object] | None = None
        self._lock = threading.Lock()

    @functools.cached_property
    def _sha256(self) -> str:
        return sha256_of(self.model_path)

    def provenance(self) -> dict[str, str]:
        """Which model read: LibreFace's models differ, and a reading means something only with its model."""
        self.load()
        return {"file": self.model_path.name, "sha256": self._sha256}

    def read(self, photos: Photo | Sequence[Photo]) -> list[AUReading]:
        """One reading per photo; raises NoFaceError naming a photo without a face."""
        items = list(photos) if isinstance(photos, (list, tuple)) else [photos]
        if not items:
            raise InvalidInputError("No photo was given. Add a photo of a face to read its expression.")
        return [self._read_one(photo, photo_label(photo, index), index) for index, photo in enumerate(items)]

    def _read_one(self, photo: Photo, label: str, index: int) -> AUReading:
        rgb = load_rgb(photo, label)
        detector, network = self.load()
        found, _ = largest_face(detector, rgb)
        if found is None:
            raise NoFaceError(f"No face was found in {label}. Use a photo where the face is clearly visible, "
                              "facing the camera and not too small.")
        box = found.photo_box(rgb.shape[1], rgb.shape[0])
        return AUReading(self.intensities(network, found), DetectedFace(index, label, found.face_count, box,
                                                                           found.score))

    @staticmethod
    def intensities(network: object, found: Detection) -> dict[str, float]:
        # Aligned on the photo without the detector's dark border, so that a face filling the frame is
        # padded by mirroring, as LibreFace's crops were, not with black.
        height, width = found.image.shape[:2]
        photo = found.image[found.pad:height - found.pad, found.pad:width - found.pad, ::-1]
        face = aligned_face(np.ascontiguousarray(photo), found.keypoints - found.pad)
        (raw,) = network.run([OUTPUT_NAME], {INPUT_NAME: network_input(face)})
        values = np.clip(np.asarray(raw, dtype=np.float64).reshape(-1) * MAX_INTENSITY, 0.0, MAX_INTENSITY)
        by_name = dict(zip(OUTPUT_AUS, values.tolist(), strict=True))
        return {name: by_name[name] for name in AU_NAMES}

    def load(self) -> tuple[object, object]:
        """The detector and the network, loaded once (a server calls it at start or before a read)."""
        with self._lock:
            if self._models is None:
                self.model_path = self.model_path or pinned_path(AU_READER)
                self._models = (self._load_detector(), self._load_network())
            return self._models

    def _load_detector(self) -> object:
        from insightface.model_zoo import get_model

        try:
            detector = get_model(str(self.pack / DETECTOR_FILE), providers=self.providers)
            detector.prepare(ctx_id=0, input_size=self.det_size)
        except Exception as error:  # onnxruntime and insightface fail with many types on bad files
            raise CheckpointError(f"The face detector in {pack_shown(self.pack)} could not be loaded "
                                  f"({weights.without_paths(str(error))}). Delete the folder and download "
                                  "buffalo_l again.") from error
        return detector

    def _load_network(self) -> object:
        import onnxruntime

        shown = weights.display_name(self.model_path)
        try:
            network = onnxruntime.InferenceSession(str(self.model_path), providers=self.providers)
        except Exception as error:  # a truncated or foreign file: onnxruntime raises its own error types
            raise CheckpointError(f"The {AU_READER.title} {shown} could not be loaded "
                                  f"({weights.without_paths(str(error))}). Delete it and run "
                                  f"`{weights.DOWNLOAD_COMMAND}` again.") from error
        inputs, outputs = network.get_inputs(), network.get_outputs()
        expected = ([INPUT_NAME, [1, 3, INPUT_SIDE, INPUT_SIDE]], [OUTPUT_NAME, [1, len(OUTPUT_AUS)]])
        found = ([inputs[0].name, inputs[0].shape], [outputs[0].name, outputs[0].shape])
        if len(inputs) != 1 or found != expected:
            raise CheckpointError(f"{shown} is not LibreFace's AU model: it takes {found[0]} and gives {found[1]}, "
                                  f"where {expected[0]} and {expected[1]} are expected.")
        return network
