"""The face crop LibreFace's AU network reads, made from a detector's five keypoints.

LibreFace aligns faces as the FFHQ dataset does: an oriented square set by the two eye centres and the
mouth corners, warped to 512 px with a bilinear quad transform, resized to 256 and centre-cropped to
224, then normalised with ImageNet's mean and deviation (its data.py and its authors' C# port,
OpenSense's FaceImageAligner). SCRFD's keypoints are those very points (its eye points are the eye
centres), so no face mesh is needed. Written here because no installed library makes this crop.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

ALIGNED_SIDE = 512
RESIZED_SIDE = 256
INPUT_SIDE = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def quarter_turn(vector: np.ndarray) -> np.ndarray:
    """`vector` turned by 90 degrees, from the image's x axis towards its y axis (downwards)."""
    return np.array([-vector[1], vector[0]])


def face_square(keypoints: np.ndarray) -> np.ndarray:
    """FFHQ's oriented square for five keypoints (eyes, nose tip, mouth corners; the image's left one of a
    pair first): its corners top-left, bottom-left, bottom-right, top-right, in image pixels whose centres
    sit on whole coordinates."""
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
    return np.array([centre - across - down, centre - across + down, centre + across + down, centre + across - down])


def aligned(image: Image.Image, keypoints: np.ndarray) -> Image.Image:
    """The INPUT_SIDE square crop of `image` (any mode PIL transforms) that LibreFace reads."""
    square = face_square(keypoints)
    # A square much larger than the crop is shrunk first, as FFHQ does: the bilinear warp samples each
    # output pixel from four pixels only and would alias.
    shrink = math.floor(np.hypot(*(square[3] - square[0])) / ALIGNED_SIDE * 0.5)
    if shrink > 1:
        image = image.resize((round(image.width / shrink), round(image.height / shrink)), Image.Resampling.LANCZOS)
        square = square / shrink
    # A square reaching past the photo (a face at its edge) is filled by mirroring the photo, as FFHQ's
    # padding does (it also blurs the mirrored part, which this leaves out).
    reach = max(0.0, -square.min(), (square[:, 0] - image.width).max(), (square[:, 1] - image.height).max())
    if reach > 0:
        pad = math.ceil(reach) + 1
        pixels = np.asarray(image)
        widths = ((pad, pad), (pad, pad)) + ((0, 0),) * (pixels.ndim - 2)
        image, square = Image.fromarray(np.pad(pixels, widths, mode="reflect")), square + pad
    # PIL places pixel centres at half coordinates, the keypoints at whole ones.
    warped = image.transform((ALIGNED_SIDE, ALIGNED_SIDE), Image.Transform.QUAD, tuple((square + 0.5).flatten()),
                             Image.Resampling.BILINEAR)
    resized = warped.resize((RESIZED_SIDE, RESIZED_SIDE), Image.Resampling.BILINEAR)
    margin = (RESIZED_SIDE - INPUT_SIDE) // 2
    return resized.crop((margin, margin, margin + INPUT_SIDE, margin + INPUT_SIDE))


def aligned_face(rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The face as LibreFace's network sees it, before normalising: INPUT_SIDE square, uint8 RGB."""
    return np.asarray(aligned(Image.fromarray(rgb), keypoints))


def network_input(face: np.ndarray) -> np.ndarray:
    """An aligned uint8 RGB face as the network's input: 1 x 3 x side x side float32, ImageNet-normalised."""
    planes = (face.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(planes.transpose(2, 0, 1)[None])
