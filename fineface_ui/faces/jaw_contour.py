"""The jaw-line dots MagicFace's background condition carries, and the 68 landmarks they come from.

MagicFace (its utils/retrieve_bg.py) aligns the 512 crop to a 256 px template by a similarity fitted
to the face's five keypoints, draws landmarks 0-16 of the 68-point scheme there as filled circles of
radius 2 in matplotlib's "rainbow" colours, warps that picture back onto the crop and adds it to the
masked crop. Its landmarks come from a 3D face-model fit; here they come from InsightFace's own 3D
68-point landmark model (buffalo_l's 1k3d68.onnx), which follows the same numbering.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import CheckpointError
from ..hub.model_sources import LANDMARK_FILE

ALIGNED_SIDE = 256
# Where the five keypoints (eyes, nose tip, mouth corners; the image's left one of a pair first) sit in
# the 256 px aligned face: ArcFace's 112 px template doubled and moved 16 px right (centred across, not
# moved down). MagicFace writes it as the 96 px wide template moved 8 px right, doubled, moved 16 px right.
JAW_TEMPLATE = np.array([
    [92.5892, 103.3926],
    [163.0636, 103.0028],
    [128.0504, 143.4732],
    [99.0986, 184.7310],
    [157.4598, 184.4082],
])
JAW_POINTS = 17  # landmarks 0-16: the jaw line, from the image's left to its right
# The dots' colours as the background image holds them (RGB): matplotlib's "rainbow" at
# linspace(0, 1, 70)[0:17], times 255 and truncated, with red and blue swapped (MagicFace draws the
# colour reversed into an array it then saves in RGB order).
JAW_COLOURS = (
    (255, 0, 127), (254, 9, 121), (254, 21, 113), (254, 34, 105), (254, 43, 99), (253, 56, 91),
    (252, 68, 83), (251, 77, 77), (250, 89, 69), (249, 100, 61), (248, 112, 53), (247, 120, 47),
    (245, 131, 39), (243, 142, 31), (242, 149, 25), (240, 159, 17), (238, 169, 9),
)
DOT_RADIUS = 2  # in the aligned 256 px face


def template_similarity(keypoints: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift; no mirroring) that takes the five keypoints
    closest to JAW_TEMPLATE in the least-squares sense."""
    source = np.asarray(keypoints, dtype=np.float64)[:, :2]
    if source.shape != JAW_TEMPLATE.shape:
        raise ValueError(f"five keypoints (5 x 2) are needed, not {source.shape}")
    source_mean, target_mean = source.mean(axis=0), JAW_TEMPLATE.mean(axis=0)
    centred, target = source - source_mean, JAW_TEMPLATE - target_mean
    spread = float((centred**2).sum())
    if spread == 0.0:
        raise ValueError("the five keypoints coincide")
    # With x' = a x - b y + tx and y' = b x + a y + ty, the least-squares a and b on centred points
    # are these two ratios; the shift then takes one mean onto the other.
    a = float((centred * target).sum()) / spread
    b = float((centred[:, 0] * target[:, 1] - centred[:, 1] * target[:, 0]).sum()) / spread
    turn = np.array([[a, -b], [b, a]])
    return np.hstack([turn, (target_mean - turn @ source_mean)[:, None]])


def jaw_dots(keypoints: np.ndarray, landmarks: np.ndarray, side: int = 512) -> np.ndarray:
    """A `side` square uint8 RGB image, black but for the 17 jaw dots: drawn in the aligned 256 px face
    and warped back onto the crop. `keypoints` (5 x 2) and `landmarks` (68 x 2 or 68 x 3) are in the
    crop's pixels."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 2 or landmarks.shape[0] != 68 or landmarks.shape[1] < 2:
        raise ValueError(f"68 landmarks (68 x 2 or 68 x 3) are needed, not {landmarks.shape}")
    to_aligned = template_similarity(keypoints)
    jaw = landmarks[:JAW_POINTS, :2] @ to_aligned[:, :2].T + to_aligned[:, 2]
    centres = np.round(jaw).astype(int)  # whole pixels, rounding halves to even as MagicFace's numpy does
    aligned = np.zeros((ALIGNED_SIDE, ALIGNED_SIDE, 3), np.uint8)
    for (x, y), colour in zip(centres.tolist(), JAW_COLOURS, strict=True):
        cv2.circle(aligned, (x, y), DOT_RADIUS, colour, thickness=-1)
    return cv2.warpAffine(aligned, to_aligned, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def add_dots(masked: np.ndarray, dots: np.ndarray) -> np.ndarray:
    """The background condition: the masked crop plus the dots, clipped to 255, as MagicFace adds them."""
    return np.minimum(masked.astype(np.uint16) + dots, 255).astype(np.uint8)


def landmarks_68(model: Any, bgr: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The 68 landmarks (68 x 2, x and y in `bgr`'s pixels) InsightFace's 3D landmark model (a `Landmark`
    from insightface.model_zoo.get_model on 1k3d68.onnx) finds for the face in `box` (x0, y0, x1, y1)."""
    from insightface.app.common import Face

    if getattr(model, "lmk_num", None) != 68:
        raise CheckpointError(f"{LANDMARK_FILE} is not InsightFace's 68-point landmark model.")
    points = model.get(bgr, Face(bbox=np.asarray(box, dtype=np.float32)))
    return np.asarray(points, dtype=np.float32)[:, :2]
