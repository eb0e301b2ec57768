"""A photo made ready for a MagicFace edit: the face chosen, its AUs read, its 512 px crop, the background
condition MagicFace draws from it, and the soft mask that pastes the edit back into the full photo.

The background condition is the crop with the face's own parts blacked out (BiSeNet face parsing, as
MagicFace does), plus the jaw line as 17 coloured dots: MagicFace fits a 3D face model (D3DFR + BFM) for
those points; we take the same 68-point jaw from buffalo_l's 1k3d68 landmarks, which ship in the face
pack we already use (docs/magicface.md says what differs).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import CheckpointError, InvalidInputError, NoFaceError
from ..hub import weights
from ..hub.model_sources import LANDMARK_FILE
from .au_reader import AUReader
from .detection import DetectedFace, Detection, detected_faces
from .edit_crop import EditCrop, soft_mask
from .face_parsing import face_region, load_face_parser, parse_face
from .jaw_contour import add_dots, jaw_dots, landmarks_68
from .model_pack import pack_shown
from .photos import MAX_PIXELS, Photo, load_rgb, photo_label

Point = tuple[float, float]  # x, y in the upright photo's pixels


@dataclass(frozen=True)
class EditPhoto:
    """What an edit of one photo needs, and how its result goes back into the photo."""

    original: np.ndarray  # the upright photo, full size, RGB uint8
    sha256: str  # of the decoded pixels (the metadata names the photo by it, never by its file or contents)
    face: DetectedFace
    aus_read: dict[str, float]
    crop: EditCrop
    source: Image.Image  # the 512 px face crop
    background: Image.Image  # MagicFace's background-and-jaw condition of the crop
    mask: np.ndarray  # 512x512 in [0, 1]: where the edited crop replaces the photo

    def record(self) -> dict[str, object]:
        """What an edit's metadata keeps of the photo: its size, its hash and the face used; never the pixels."""
        height, width = self.original.shape[:2]
        return {"width": width, "height": height, "photo": {"sha256": self.sha256, "face_box": list(self.face.box)}}

    def paste(self, edited: Image.Image) -> Image.Image:
        """The full photo with the edited crop blended in; pixels outside the mask's reach are the original's."""
        pixels = np.asarray(edited.convert("RGB").resize(self.source.size, Image.Resampling.LANCZOS))
        return Image.fromarray(self.crop.paste(self.original, pixels, self.mask))


class EditPhotoReader:
    """Finds, reads and prepares the face to edit. The AU reader brings the detector and LibreFace; the
    landmark model comes from the same buffalo_l pack, the face parser from the MagicFace repo."""

    def __init__(self, au_reader: AUReader, face_parser: str | Path) -> None:
        self.au_reader = au_reader
        self.parser_path = Path(face_parser)
        self._models: tuple[object, object] | None = None
        self._lock = threading.Lock()

    def read(self, photo: Photo, point: Point | None = None) -> EditPhoto:
        """The largest face of `photo`, or the one at `point`, made ready to edit; a readable error for a photo
        without a face, a face too small, or a photo too large."""
        label = "the photo" + photo_label(photo, 0).removeprefix("photo 1")  # one photo: not numbered
        rgb = load_rgb(photo, label, full_size=True)
        height, width = rgb.shape[:2]
        if width * height > MAX_PIXELS:  # a PIL image or array handed in directly
            raise InvalidInputError(f"{label} is {width}x{height} pixels; photos of up to "
                                    f"{MAX_PIXELS / 1e6:.0f} MP are edited. Use a smaller copy of the photo.")
        detector, network = self.au_reader.load()
        landmarker, parser = self.load()
        faces, _ = detected_faces(detector, rgb)
        if not faces:
            raise NoFaceError(f"No face was found in {label}. Use a photo where the face is clearly visible, "
                              "facing the camera and not too small.")
        found = chosen_face(faces, point, width, height, label)
        # The detector's box as it is, not clipped to the photo: a face at the edge keeps MagicFace's crop.
        corners = (found.box.reshape(2, 2).astype(np.float64) - found.pad) / found.scale
        crop = EditCrop.around(tuple(corners.reshape(-1).tolist()))
        source = crop.cut(rgb)
        keypoints = crop.to_crop((np.asarray(found.keypoints, dtype=np.float64) - found.pad) / found.scale)
        in_crop = crop.to_crop(corners)
        landmarks = landmarks_68(landmarker, np.ascontiguousarray(source[:, :, ::-1]), in_crop.reshape(-1))
        region = face_region(parse_face(parser, source))
        _check_parsed(region, in_crop, label)
        background = add_dots(np.where(region[:, :, None], 0, source).astype(np.uint8), jaw_dots(keypoints, landmarks))
        return EditPhoto(
            original=rgb,
            sha256=hashlib.sha256(np.ascontiguousarray(rgb)).hexdigest(),  # the same bytes, not copied
            face=DetectedFace(0, label, found.face_count, found.photo_box(width, height), found.score),
            aus_read=AUReader.intensities(network, found),
            crop=crop,
            source=Image.fromarray(source),
            background=Image.fromarray(background),
            mask=soft_mask(region),
        )

    def load(self) -> tuple[object, object]:
        """The landmark model and the face parser, loaded once."""
        with self._lock:
            if self._models is None:
                self._models = (self._load_landmarker(), load_face_parser(self.parser_path))
            return self._models

    def _load_landmarker(self) -> object:
        from insightface.model_zoo import get_model

        path = self.au_reader.pack / LANDMARK_FILE
        if not path.is_file():
            raise CheckpointError(f"{pack_shown(self.au_reader.pack)} has no {LANDMARK_FILE} (the 68-point landmarks "
                                  f"a photo edit draws the jaw from): run `{weights.DOWNLOAD_COMMAND}` again.")
        try:
            return get_model(str(path), providers=self.au_reader.providers)
        except Exception as error:  # onnxruntime and insightface fail with many types on bad files
            raise CheckpointError(f"The landmark model {LANDMARK_FILE} in {pack_shown(self.au_reader.pack)} could "
                                  f"not be loaded ({weights.without_paths(str(error))}). Delete the folder and "
                                  "download buffalo_l again.") from error


# Below this share of the face's box parsed as face parts (skin, brows, eyes, nose, mouth, lips), the parser
# did not see a face: the soft mask would be empty and the "edit" would be the photo itself.
MIN_PARSED_SHARE = 0.1


def _check_parsed(region: np.ndarray, box: np.ndarray, label: str) -> None:
    """Refuse a face whose features the face parser cannot find (turned away, covered)."""
    (x0, y0), (x1, y1) = np.clip(np.round(box), 0, region.shape[0]).astype(int)
    inside = region[y0:y1, x0:x1]
    if inside.size == 0 or inside.mean() < MIN_PARSED_SHARE:
        raise InvalidInputError(f"The features of the face in {label} could not be found (is it turned away or "
                                "covered?), so it cannot be edited. Use a photo where the face is clearly visible.")


def chosen_face(faces: Sequence[Detection], point: Point | None, width: int, height: int, label: str) -> Detection:
    """The largest face, or the one whose box holds `point` (the nearest centre, if boxes overlap there)."""
    if point is None:
        return faces[0]
    x, y = point
    holding = []
    for face in faces:
        x0, y0, x1, y1 = face.photo_box(width, height)
        if x0 <= x < x1 and y0 <= y < y1:
            holding.append(((x - (x0 + x1) / 2) ** 2 + (y - (y0 + y1) / 2) ** 2, face))
    if not holding:
        raise InvalidInputError(f"No face is at ({x:.0f}, {y:.0f}) in {label}, which has {len(faces)} face(s): "
                                "click inside a face, or leave the point out for the largest.")
    return min(holding, key=lambda item: item[0])[1]
