"""The largest face in a photo, as buffalo_l's SCRFD detector finds it: the embedder and the AU reader
both start from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import onnxruntime

from .photos import MAX_SIDE

Provider = str | tuple[str, dict[str, int]]  # ONNX Runtime's: a name, or a name with its options


def default_providers(device: str | None = None) -> list[Provider]:
    """CUDA first when onnxruntime offers it, CPU always as the fallback. A `device` such as "cuda:1" puts the
    CUDA sessions on that GPU (one process per GPU would otherwise crowd them all onto GPU 0)."""
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return ["CPUExecutionProvider"]
    kind, _, index = str(device or "").partition(":")
    cuda = ("CUDAExecutionProvider", {"device_id": int(index)}) if kind == "cuda" and index else "CUDAExecutionProvider"
    return [cuda, "CPUExecutionProvider"]


@dataclass(frozen=True)
class DetectedFace:
    """The face used from one photo; `box` is (x0, y0, x1, y1) in the upright photo's pixels, x1/y1 exclusive."""

    index: int
    label: str
    face_count: int
    box: tuple[int, int, int, int]
    score: float


# A face that fills the whole frame has no visible outline; a dark border
# around the photo gives the detector one. Used only when the first try fails.
PAD_FRACTION = 0.25


@dataclass(frozen=True)
class Detection:
    """The largest face found, in the pixels of `image`: the photo as the detector searched it (BGR, at most
    MAX_SIDE a side, maybe with a dark border), which the models after the detector read too."""

    image: np.ndarray
    box: np.ndarray  # x0, y0, x1, y1
    keypoints: np.ndarray  # 5 x 2: the eyes, the nose tip, the mouth corners; the image's left one of a pair first
    score: float
    face_count: int
    scale: float  # image pixels per photo pixel, before the border
    pad: int

    def photo_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box in the upright photo's own pixels, clipped to it; x1/y1 exclusive."""
        corners = (self.box - self.pad) / self.scale
        limits = (width, height, width, height)
        return tuple(int(np.clip(round(value), 0, limit)) for value, limit in zip(corners.tolist(), limits))


def detected_faces(detector: Any, rgb: np.ndarray) -> tuple[list[Detection], int]:
    """Every face `detector` (InsightFace's SCRFD) finds in an RGB photo, the largest first; and how many
    times the detector ran (a second time, with a border, when the first finds nothing)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, MAX_SIDE / max(height, width))
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    # No explicit upscaling: SCRFD resizes every photo to its input size itself.
    for runs, pad in enumerate((0, round(PAD_FRACTION * max(bgr.shape[:2]))), start=1):
        image = cv2.copyMakeBorder(bgr, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0) if pad else bgr
        boxes, keypoints = detector.detect(image, max_num=0)
        if len(boxes):
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            order = np.argsort(-areas, kind="stable")  # of equal areas, the detector's first comes first
            return [Detection(image, boxes[i, :4], keypoints[i], float(boxes[i, 4]), len(boxes), scale, pad)
                    for i in order.tolist()], runs
    return [], runs


def largest_face(detector: Any, rgb: np.ndarray) -> tuple[Detection | None, int]:
    """The largest face of detected_faces, or None; and how many times the detector ran."""
    faces, runs = detected_faces(detector, rgb)
    return (faces[0] if faces else None), runs
