"""The crop MagicFace edits (a square of 1.5 box widths onto [80, 432] of 512 px) and the paste back."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from fineface_ui.errors import InvalidInputError
from fineface_ui.faces.edit_crop import (
    CROP_SIDE,
    FACE_SPAN,
    MASK_BORDER,
    MASK_FEATHER,
    MASK_GROW,
    MIN_FACE_WIDTH,
    EditCrop,
    soft_mask,
)


def smooth_photo(height: int, width: int) -> np.ndarray:
    """An RGB photo of gentle gradients and long waves: a bilinear warp there and back keeps it."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [
        120 + 80 * np.sin(x / 37.0) * np.cos(y / 53.0),
        60 + 150 * x / width,
        200 - 120 * y / height + 20 * np.sin((x + y) / 41.0),
    ]
    return np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)


def crop_positions(crop: EditCrop, height: int, width: int) -> np.ndarray:
    """Where each pixel of a `height` x `width` photo lands on the crop: height x width x 2 (x, y)."""
    y, x = np.mgrid[0:height, 0:width]
    return crop.to_crop(np.stack([x.ravel(), y.ravel()], axis=1)).reshape(height, width, 2)


def within(positions: np.ndarray, left: float, top: float, right: float, bottom: float) -> np.ndarray:
    return ((positions[..., 0] > left) & (positions[..., 0] < right)
            & (positions[..., 1] > top) & (positions[..., 1] < bottom))


def footprint(crop: EditCrop, mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Photo pixels whose crop position lies within 2 crop px of the bounds of the mask's nonzero pixels."""
    rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return within(crop_positions(crop, height, width), columns[0] - 2, rows[0] - 2, columns[-1] + 2, rows[-1] + 2)


def test_box_centre_goes_to_the_crop_centre_and_one_and_a_half_widths_span_the_face_span():
    box = (100.0, 50.0, 300.0, 330.0)  # 200 wide, 280 high: only the width sets the scale
    crop = EditCrop.around(box)
    centre = (200.0, 190.0)
    points = np.array([centre, (200 - 150, 190), (200 + 150, 190), (200, 190 - 150), (200, 190 + 150)])
    expected = [(256, 256), (FACE_SPAN[0], 256), (FACE_SPAN[1], 256), (256, FACE_SPAN[0]), (256, FACE_SPAN[1])]
    np.testing.assert_allclose(crop.to_crop(points), expected, atol=1e-9)
    assert crop.scale == pytest.approx(352 / 300)
    np.testing.assert_allclose(crop.to_photo(crop.to_crop(points)), points, atol=1e-9)


def test_cut_shows_the_photo_under_the_square():
    photo = np.zeros((400, 400, 3), np.uint8)
    photo[100:300, 100:300] = (200, 150, 100)  # the face's box is this block, x1/y1 exclusive
    crop = EditCrop.around((99.5, 99.5, 299.5, 299.5)).cut(photo)
    assert crop.shape == (CROP_SIDE, CROP_SIDE, 3) and crop.dtype == np.uint8
    block = 352 / 1.5  # the box is two thirds of the square
    inside = slice(round(256 - block / 2) + 2, round(256 + block / 2) - 2)
    assert (crop[inside, inside] == (200, 150, 100)).all()
    assert (crop[:round(256 - block / 2) - 2] == 0).all() and (crop[:, round(256 + block / 2) + 2:] == 0).all()


def test_a_face_narrower_than_the_minimum_is_refused_with_the_minimum_named():
    with pytest.raises(InvalidInputError, match=f"at least {MIN_FACE_WIDTH} px wide"):
        EditCrop.around((10.0, 10.0, 10.0 + MIN_FACE_WIDTH - 1, 80.0))
    with pytest.raises(InvalidInputError, match=f"{MIN_FACE_WIDTH} px"):
        EditCrop.around((10.0, 10.0, float("nan"), 80.0))
    EditCrop.around((10.0, 10.0, 10.0 + MIN_FACE_WIDTH, 80.0))


def test_paste_keeps_every_pixel_outside_the_masks_footprint_bit_for_bit_and_puts_the_edit_where_it_is_one():
    photo = np.random.default_rng(1).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    crop = EditCrop.around((300.0, 200.0, 500.0, 420.0))
    edited = np.full((CROP_SIDE, CROP_SIDE, 3), (10, 240, 30), np.uint8)
    mask = np.zeros((CROP_SIDE, CROP_SIDE), np.float32)
    mask[150:350, 180:330] = 1.0
    pasted = crop.paste(photo, edited, mask)
    assert pasted.shape == photo.shape and pasted.dtype == np.uint8
    untouched = ~footprint(crop, mask, *photo.shape[:2])
    assert np.array_equal(pasted[untouched], photo[untouched])
    changed = np.nonzero((pasted != photo).any(axis=-1))
    assert len(changed[0]) > 0
    # Two crop px inside the mask's edge, every photo pixel is the edit's.
    fully = within(crop_positions(crop, *photo.shape[:2]), 180 + 2, 150 + 2, 329 - 2, 349 - 2)
    assert fully.sum() > 10000 and (pasted[fully] == (10, 240, 30)).all()


def test_paste_with_an_empty_mask_returns_the_photo_unchanged():
    photo = np.random.default_rng(2).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    crop = EditCrop.around((80.0, 80.0, 220.0, 220.0))
    edited = np.full((CROP_SIDE, CROP_SIDE, 3), 255, np.uint8)
    pasted = crop.paste(photo, edited, np.zeros((CROP_SIDE, CROP_SIDE), np.float32))
    assert np.array_equal(pasted, photo) and pasted is not photo


def test_a_soft_mask_leaves_pixels_where_it_warps_to_zero_untouched():
    photo = np.random.default_rng(3).integers(0, 256, (500, 500, 3), dtype=np.uint8)
    crop = EditCrop.around((150.0, 150.0, 350.0, 350.0))
    region = np.zeros((CROP_SIDE, CROP_SIDE), bool)
    region[200:320, 190:330] = True
    mask = soft_mask(region)
    pasted = crop.paste(photo, np.zeros((CROP_SIDE, CROP_SIDE, 3), np.uint8), mask)
    untouched = ~footprint(crop, mask, *photo.shape[:2])
    assert np.array_equal(pasted[untouched], photo[untouched])
    # Inside the region the edit (black) replaces the photo entirely.
    centre = crop.to_photo(np.array([[260.0, 260.0]]))[0].round().astype(int)
    assert (pasted[centre[1] - 5:centre[1] + 5, centre[0] - 5:centre[0] + 5] == 0).all()


def test_a_face_at_the_photos_corner_is_cut_with_black_past_the_edge_and_pasted_inside_the_photo():
    photo = smooth_photo(240, 320)
    box = (-20.0, -30.0, 150.0, 140.0)  # the square reaches past the top and the left
    crop = EditCrop.around(box)
    cut = crop.cut(photo)
    top_left_of_photo = crop.to_crop(np.array([[0.0, 0.0]]))[0]
    assert top_left_of_photo.min() > 20
    assert (cut[: int(top_left_of_photo[1]) - 1] == 0).all() and (cut[:, : int(top_left_of_photo[0]) - 1] == 0).all()
    assert cut[300, 300].any()
    edited = np.full_like(cut, 77)
    pasted = crop.paste(photo, edited, soft_mask(np.ones((CROP_SIDE, CROP_SIDE), bool)))
    assert pasted.shape == photo.shape
    assert (pasted[0:40, 0:40] == 77).all()
    untouched = ~footprint(crop, soft_mask(np.ones((CROP_SIDE, CROP_SIDE), bool)), *photo.shape[:2])
    assert untouched.any() and np.array_equal(pasted[untouched], photo[untouched])


def test_cut_then_paste_through_a_full_mask_gives_back_the_face_area_closely():
    photo = smooth_photo(700, 900)
    box = (350.0, 250.0, 590.0, 520.0)
    crop = EditCrop.around(box)
    region = np.zeros((CROP_SIDE, CROP_SIDE), bool)
    region[FACE_SPAN[0]:FACE_SPAN[1], FACE_SPAN[0]:FACE_SPAN[1]] = True
    pasted = crop.paste(photo, crop.cut(photo), soft_mask(region))
    face = (slice(250, 520), slice(350, 590))
    difference = np.abs(pasted[face].astype(int) - photo[face].astype(int))
    assert difference.mean() < 0.25 and difference.max() <= 2


def test_a_large_face_is_averaged_down_not_aliased():
    photo = np.zeros((2400, 2400, 3), np.uint8)
    photo[::2, ::2] = photo[1::2, 1::2] = 255  # a one-pixel checkerboard: mid grey once averaged
    cut = EditCrop.around((600.0, 600.0, 1800.0, 1800.0)).cut(photo)
    face = cut[100:412, 100:412].astype(float)
    assert abs(face.mean() - 127.5) < 2 and face.std() < 3


def test_paste_works_in_the_face_area_only_not_on_full_size_float_copies():
    photo = np.zeros((3000, 4000, 3), np.uint8)
    crop = EditCrop.around((1800.0, 1300.0, 2100.0, 1650.0))
    edited = np.full((CROP_SIDE, CROP_SIDE, 3), 200, np.uint8)
    mask = soft_mask(np.ones((CROP_SIDE, CROP_SIDE), bool))
    tracemalloc.start()
    try:
        pasted = crop.paste(photo, edited, mask)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pasted[1475, 1950].tolist() == [200, 200, 200]
    # The returned copy plus work on the face's rectangle; a float32 copy of the whole photo is 4 x its bytes.
    assert peak < 2 * photo.nbytes


def test_soft_mask_is_one_on_the_grown_region_fades_smoothly_and_is_zero_at_the_crops_border():
    region = np.zeros((CROP_SIDE, CROP_SIDE), bool)
    region[200:300, 220:280] = True
    mask = soft_mask(region)
    assert mask.dtype == np.float32 and mask.shape == (CROP_SIDE, CROP_SIDE)
    y, x = np.mgrid[0:CROP_SIDE, 0:CROP_SIDE]
    to_region = np.hypot(np.clip(x, 220, 279) - x, np.clip(y, 200, 299) - y)
    assert (mask[to_region <= MASK_GROW] == 1).all()
    assert mask[250, 280 + MASK_GROW + MASK_FEATHER + 1] == 0 and mask[250, 280 + MASK_GROW + MASK_FEATHER // 2] > 0
    row = mask[250]
    assert np.abs(np.diff(row)).max() < 2.0 / MASK_FEATHER
    assert np.all(np.diff(row[280:400]) <= 0)

    everything = soft_mask(np.ones((CROP_SIDE, CROP_SIDE), bool))
    border = np.ones((CROP_SIDE, CROP_SIDE), bool)
    border[MASK_BORDER:-MASK_BORDER, MASK_BORDER:-MASK_BORDER] = False
    assert (everything[border] == 0).all() and (everything[MASK_BORDER:-MASK_BORDER, MASK_BORDER] > 0).all()
    assert (everything[100:412, 100:412] == 1).all()
    assert np.abs(np.diff(everything[256])).max() < 2.0 / MASK_FEATHER


def test_soft_mask_with_no_feather_is_the_grown_region_itself():
    region = np.zeros((CROP_SIDE, CROP_SIDE), bool)
    region[256, 256] = True
    mask = soft_mask(region, grow=3, feather=0)
    assert set(np.unique(mask).tolist()) == {0.0, 1.0}
    assert mask[256, 259] == 1 and mask[256, 260] == 0 and mask[258, 258] == 1
