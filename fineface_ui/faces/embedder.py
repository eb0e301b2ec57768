"""Identity embeddings from user photos with InsightFace's buffalo_l pack (SCRFD + ArcFace)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..errors import CheckpointError, InvalidInputError, NoFaceError
from ..hub import weights
from .detection import DetectedFace, Provider, default_providers, largest_face
from .model_pack import find_model_pack, pack_shown
from .photos import Photo, load_rgb, photo_label

CACHE_SIZE = 64


@dataclass(frozen=True)
class FaceEmbeddings:
    """Unit-norm ArcFace embeddings, one row per photo, and the face chosen in each."""

    embeddings: torch.Tensor
    faces: list[DetectedFace]


@dataclass(frozen=True)
class CacheInfo:
    """Counters of the embedding cache."""

    hits: int
    misses: int
    size: int
    maxsize: int


@dataclass(frozen=True)
class _PhotoResult:
    embedding: np.ndarray
    face_count: int
    box: tuple[int, int, int, int]
    score: float


class FaceEmbedder:
    """Largest-face ArcFace embeddings for user photos; models load on the first embed."""

    def __init__(
        self,
        root: str | Path | None = None,
        providers: list[Provider] | None = None,
        det_size: tuple[int, int] = (640, 640),
    ) -> None:
        if len(det_size) != 2 or any(int(side) <= 0 or int(side) % 32 for side in det_size):
            # SCRFD's feature pyramid only lines up for multiples of its largest stride.
            raise ValueError(f"det_size must be two positive multiples of 32, got {det_size!r}")
        self.model_dir = find_model_pack(root)
        self.providers = list(providers) if providers is not None else default_providers()
        self.det_size = (int(det_size[0]), int(det_size[1]))
        self._app = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, _PhotoResult | None] = OrderedDict()
        self._hits = 0
        self._misses = 0
        self._detector_runs = 0

    @property
    def detector_runs(self) -> int:
        """How many times the face detector has run (a cache hit runs it zero times)."""
        return self._detector_runs

    def cache_info(self) -> CacheInfo:
        """Hits, misses and size of the per-photo embedding cache."""
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._cache), CACHE_SIZE)

    def embed(self, photos: Photo | Sequence[Photo]) -> FaceEmbeddings:
        """Embed the largest face of each photo; raises NoFaceError naming a photo without one."""
        items = list(photos) if isinstance(photos, (list, tuple)) else [photos]
        if not items:
            raise InvalidInputError("No photo was given. Add at least one photo of the face.")
        vectors, faces = [], []
        for index, photo in enumerate(items):
            label = photo_label(photo, index)
            result = self._embed_photo(photo, label)
            if result is None:
                raise NoFaceError(
                    f"No face was found in {label}. Use a photo where the face is clearly "
                    "visible, facing the camera and not too small."
                )
            vectors.append(result.embedding)
            faces.append(DetectedFace(index, label, result.face_count, result.box, result.score))
        return FaceEmbeddings(torch.from_numpy(np.stack(vectors)), faces)

    def _embed_photo(self, photo: Photo, label: str) -> _PhotoResult | None:
        """The cached result, or the analysis of the decoded photo. A file is known by its bytes, so a
        photo sent again (every render sends the photos) is not decoded again; others by their pixels."""
        file_key = _file_key(photo)
        rgb = load_rgb(photo, label) if file_key is None else None
        key = file_key or _pixels_key(rgb)
        with self._lock:
            if key in self._cache:
                self._hits += 1
                self._cache.move_to_end(key)
                return self._cache[key]
            self._misses += 1
        # Photos without a face are cached too: asking again will not find one either.
        result = self._analyse(load_rgb(photo, label) if rgb is None else rgb)
        with self._lock:
            self._cache[key] = result
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return result

    def _analyse(self, rgb: np.ndarray) -> _PhotoResult | None:
        # insightface takes about a second to import; only embedding pays for it.
        from insightface.app.common import Face

        app = self._load()
        found, runs = largest_face(app.det_model, rgb)
        with self._lock:
            self._detector_runs += runs
        if found is None:
            return None
        face = Face(bbox=found.box, kps=found.keypoints, det_score=found.score)
        # Only the chosen face is embedded; FaceAnalysis.get would embed every face in a group photo.
        app.models["recognition"].get(found.image, face)
        embedding = np.asarray(face.normed_embedding, dtype=np.float32)
        return _PhotoResult(embedding, found.face_count, found.photo_box(rgb.shape[1], rgb.shape[0]), found.score)

    def _load(self):
        with self._lock:
            if self._app is None:
                from insightface.app import FaceAnalysis

                try:
                    # The folder itself (not name="buffalo_l" plus a root) keeps FaceAnalysis
                    # away from its GitHub download and from a stray ./buffalo_l in the cwd.
                    app = FaceAnalysis(
                        name=str(self.model_dir),
                        allowed_modules=["detection", "recognition"],
                        providers=self.providers,
                    )
                    app.prepare(ctx_id=0, det_size=self.det_size)
                except Exception as exc:  # onnxruntime and insightface fail with many types (even assert) on bad files
                    raise CheckpointError(
                        f"The face models in {pack_shown(self.model_dir)} could not be loaded "
                        f"({weights.without_paths(str(exc))}). "
                        "Delete the folder and download buffalo_l again."
                    ) from exc
                if "recognition" not in app.models:
                    raise CheckpointError(
                        f"{pack_shown(self.model_dir)} has no face recognition model InsightFace can use. "
                        "Delete the folder and download buffalo_l again."
                    )
                self._app = app
            return self._app


def _file_key(photo: Photo) -> bytes | None:
    """A digest of a photo file's bytes; None for a photo that is not an existing file."""
    if not isinstance(photo, (str, os.PathLike)) or not Path(photo).is_file():
        return None
    with open(photo, "rb") as file:
        return hashlib.file_digest(file, lambda: hashlib.blake2b(digest_size=20, person=b"file")).digest()


def _pixels_key(rgb: np.ndarray) -> bytes:
    digest = hashlib.blake2b(f"{rgb.shape}".encode(), digest_size=20, person=b"pixels")
    digest.update(np.ascontiguousarray(rgb).data)
    return digest.digest()


def draw_face_box(photo: Photo, face: DetectedFace, color: tuple[int, int, int] = (255, 60, 60)) -> Image.Image:
    """A copy of the upright photo with the used face outlined, to show the user which face counted."""
    image = Image.fromarray(load_rgb(photo, face.label))
    x0, y0, x1, y1 = face.box
    line = max(2, round(max(image.size) / 250))
    ImageDraw.Draw(image).rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=color, width=line)
    return image
