"""The face crop LibreFace's AU network reads, made from a detector's five keypoints.

LibreFace aligns faces as the FFHQ dataset does: an oriented square set by the two eye centres and the
mouth corners, warped to 512 px, resized to 256 and centre-cropped to 224, then normalised with
ImageNet's mean and deviation. SCRFD's keypoints are those very points (its eye points are the eye
centres), so no face mesh is needed. Written here because no installed library makes this crop.
"""

from __future__ import annotations

import cv2
import numpy as np

ALIGNED_SIDE = 512
RESIZED_SIDE = 256
INPUT_SIDE = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def quarter_turn(vector: np.ndarray) -> np.ndarray:
    """`vector` turned by 90 degrees, from the image's x axis towards its y axis (downwards)."""
    return np.array([-vector[1], vector[0]])


def face_square(keypoints: np.ndarray) -> np.ndarray:
    """The corners of FFHQ's oriented square for five keypoints (eyes, nose tip, mouth corners; the image's
    left one of a pair first): top-left, top-right, bottom-left, in image pixels."""
    left_eye, right_eye, _, left_mouth, right_mouth = np.asarray(keypoints, dtype=np.float64)
    eye_centre = (left_eye + right_eye) / 2
    eye_to_eye = right_eye - left_eye
    eye_to_mouth = (left_mouth + right_mouth) / 2 - eye_centre
    # The square's right-pointing side: the eye line and the eye-to-mouth line turned back a quarter
    # both say where "right" is on the face; their sum says it even for a face in profile.
    across = eye_to_eye - quarter_turn(eye_to_mouth)
    across = across / np.hypot(*across) * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    down = quarter_turn(across)
    centre = eye_centre + eye_to_mouth * 0.1
    return np.array([centre - across - down, centre + across - down, centre - across + down])


def aligned_face(rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The face as LibreFace's network sees it, before normalising: INPUT_SIDE square, uint8 RGB."""
    corners = face_square(keypoints)
    side = np.hypot(*(corners[1] - corners[0]))
    # A square much larger than the crop is shrunk first, as FFHQ does: the warp samples each output
    # pixel at a single point and would alias.
    shrink = int(side / ALIGNED_SIDE / 2)
    if shrink > 1:
        size = (max(1, round(rgb.shape[1] / shrink)), max(1, round(rgb.shape[0] / shrink)))
        rgb, corners = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), corners / shrink
    target = np.array([[0, 0], [ALIGNED_SIDE, 0], [0, ALIGNED_SIDE]], dtype=np.float32)
    warp = cv2.getAffineTransform(corners.astype(np.float32), target)
    aligned = cv2.warpAffine(rgb, warp, (ALIGNED_SIDE, ALIGNED_SIDE), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
    resized = cv2.resize(aligned, (RESIZED_SIDE, RESIZED_SIDE), interpolation=cv2.INTER_AREA)
    margin = (RESIZED_SIDE - INPUT_SIDE) // 2
    return resized[margin:margin + INPUT_SIDE, margin:margin + INPUT_SIDE]


def network_input(face: np.ndarray) -> np.ndarray:
    """An aligned uint8 RGB face as the network's input: 1 x 3 x side x side float32, ImageNet-normalised."""
    planes = (face.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(planes.transpose(2, 0, 1)[None])
