"""The jaw-line dots of MagicFace's background condition, and the 68 landmarks they are drawn from."""

from __future__ import annotations

import cv2
import matplotlib
import numpy as np
import pytest

from fineface_ui.errors import CheckpointError
from fineface_ui.faces.jaw_contour import (
    DOT_RADIUS,
    JAW_COLOURS,
    JAW_TEMPLATE,
    add_dots,
    jaw_dots,
    landmarks_68,
    template_similarity,
)
from fineface_ui.standins.tiny_face_models import LANDMARK_FILE, write_model_pack

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # skimage deprecation inside insightface


def similarity(scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    turn = np.radians(degrees)
    rotation = scale * np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return np.hstack([rotation, np.array(shift)[:, None]])


def mapped(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def face_in_crop() -> tuple[np.ndarray, np.ndarray]:
    """Five keypoints and 68 landmarks of a face tilted by 8 degrees, in 512 crop pixels: the template
    face and a U-shaped jaw around it, enlarged 1.4 times."""
    to_crop = similarity(1.4, 8.0, (40.0, 20.0))
    angles = np.linspace(np.pi * 0.95, np.pi * 0.05, 17)
    jaw = np.stack([128 - 80 * np.cos(angles), 110 + 100 * np.sin(angles)], axis=1)
    rest = np.tile(JAW_TEMPLATE.mean(axis=0), (51, 1))
    landmarks = np.hstack([mapped(to_crop, np.vstack([jaw, rest])), np.zeros((68, 1))])  # x, y, z
    return mapped(to_crop, JAW_TEMPLATE), landmarks


def test_jaw_colours_are_matplotlibs_rainbow_at_seventy_steps_with_red_and_blue_swapped():
    rainbow = (255 * matplotlib.colormaps["rainbow"](np.linspace(0, 1, 70))).astype(int)[:17, :3]
    assert list(JAW_COLOURS) == [(blue, green, red) for red, green, blue in rainbow.tolist()]
    assert JAW_COLOURS[0] == (255, 0, 127) and JAW_COLOURS[-1] == (238, 169, 9)


def test_template_is_arcfaces_112_px_template_doubled_and_centred_across_256_px():
    arcface = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]])
    np.testing.assert_allclose(JAW_TEMPLATE, arcface * 2 + (16, 0), atol=1e-4)


def test_the_similarity_fit_recovers_an_exact_one_and_is_the_least_squares_one_for_noisy_keypoints():
    to_template = similarity(0.7, -12.0, (30.0, -15.0))
    keypoints = mapped(cv2.invertAffineTransform(to_template), JAW_TEMPLATE)
    np.testing.assert_allclose(template_similarity(keypoints), to_template, atol=1e-9)

    noisy = keypoints + np.random.default_rng(0).normal(0, 4, keypoints.shape)
    # The same fit as a linear least-squares problem in (a, b, tx, ty): x' = a x - b y + tx, y' = b x + a y + ty.
    rows = [[x, -y, 1, 0] for x, y in noisy] + [[y, x, 0, 1] for x, y in noisy]
    (a, b, tx, ty), *_ = np.linalg.lstsq(np.array(rows), np.concatenate([JAW_TEMPLATE[:, 0], JAW_TEMPLATE[:, 1]]),
                                         rcond=None)
    np.testing.assert_allclose(template_similarity(noisy), [[a, -b, tx], [b, a, ty]], atol=1e-9)


def test_jaw_dots_are_seventeen_dots_of_their_colours_at_the_jaw_landmarks():
    keypoints, landmarks = face_in_crop()
    dots = jaw_dots(keypoints, landmarks)
    assert dots.shape == (512, 512, 3) and dots.dtype == np.uint8
    count, labels, _, centroids = cv2.connectedComponentsWithStats(dots.any(axis=-1).astype(np.uint8))
    assert count - 1 == 17
    for index, (point, colour) in enumerate(zip(landmarks[:17, :2], JAW_COLOURS, strict=True)):
        nearest = 1 + int(np.argmin(np.hypot(*(centroids[1:] - point).T)))
        assert np.hypot(*(centroids[nearest] - point)) < 1.5, f"dot {index} is off its landmark"
        pixels = dots[labels == nearest]
        # Its middle is its colour; its edge, blended with black, a darker shade of it.
        assert (pixels == colour).all(axis=-1).sum() >= 4, f"dot {index} is not {colour}"
        assert (pixels <= np.array(colour) + 1).all()
        # Its size: radius 2 in the 256 px face, enlarged 1.4 times on the crop.
        assert len(pixels) <= np.pi * (1.4 * (DOT_RADIUS + 1.5)) ** 2


def test_jaw_dots_follow_the_crop_size_and_ignore_everything_but_the_jaw():
    keypoints, landmarks = face_in_crop()
    moved = landmarks.copy()
    moved[17:] += 50
    assert np.array_equal(jaw_dots(keypoints, landmarks), jaw_dots(keypoints, moved))
    half = jaw_dots(keypoints / 2, landmarks / 2, side=256)
    assert half.shape == (256, 256, 3)
    assert cv2.connectedComponents(half.any(axis=-1).astype(np.uint8))[0] - 1 == 17


def test_dots_are_added_to_the_masked_crop_and_clipped():
    masked = np.full((512, 512, 3), 100, np.uint8)
    masked[0, 0] = 200
    dots = np.zeros_like(masked)
    dots[0, 0] = dots[1, 1] = (255, 0, 127)
    background = add_dots(masked, dots)
    assert background[0, 0].tolist() == [255, 200, 255] and background[1, 1].tolist() == [255, 100, 227]
    assert background[2, 2].tolist() == [100, 100, 100]


@pytest.fixture(scope="module")
def landmarker(tmp_path_factory):
    from insightface.model_zoo import get_model

    pack = write_model_pack(tmp_path_factory.mktemp("faces"))
    return get_model(str(pack / LANDMARK_FILE), providers=["CPUExecutionProvider"])


def test_the_tiny_landmarker_loads_through_insightface_as_its_3d_68_point_model(landmarker):
    from insightface.model_zoo.landmark import Landmark

    assert isinstance(landmarker, Landmark)
    assert (landmarker.lmk_num, landmarker.lmk_dim, landmarker.taskname) == (68, 3, "landmark_3d_68")
    assert landmarker.input_size == (192, 192)
    assert (landmarker.input_mean, landmarker.input_std) == (0.0, 1.0)  # it normalises inside, as 1k3d68 does


def test_landmarks_68_lie_around_the_box_and_move_with_it(landmarker):
    photo = np.random.default_rng(4).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    box = (200.0, 120.0, 400.0, 330.0)
    points = landmarks_68(landmarker, photo, box)
    assert points.shape == (68, 2) and points.dtype == np.float32
    margin = 0.1 * (box[2] - box[0])
    assert (points[:, 0] > box[0] - margin).all() and (points[:, 0] < box[2] + margin).all()
    assert (points[:, 1] > box[1] - margin).all() and (points[:, 1] < box[3] + margin).all()
    # The jaw runs from the image's left (landmark 0) through the chin (8) to its right (16).
    assert points[0, 0] < points[8, 0] < points[16, 0] and points[8, 1] > points[[0, 16], 1].max()
    shifted = landmarks_68(landmarker, photo, (box[0] + 30, box[1] - 20, box[2] + 30, box[3] - 20))
    np.testing.assert_allclose(shifted - points, np.tile([30.0, -20.0], (68, 1)), atol=1e-3)


def test_landmarks_68_refuses_a_model_of_another_landmark_count():
    class TwoDimensional106:
        lmk_num = 106
        model_file = "2d106det.onnx"

    with pytest.raises(CheckpointError, match="1k3d68.onnx is not InsightFace's 68-point"):  # no server path
        landmarks_68(TwoDimensional106(), np.zeros((10, 10, 3), np.uint8), (0, 0, 5, 5))
