"""The 512 px square MagicFace edits, cut from a photo around its face, and the edit pasted back.

MagicFace's crop (its utils/preprocess.py) is a square of side 1.5 x the detected box's width (the
height is not used), centred on the box, mapped onto [80, 432]^2 of a 512 canvas by a bilinear warp
with black where the square leaves the photo. MagicFace regenerates the whole crop and pastes nothing
back; here the edited crop goes back into the full-resolution photo through a feathered face mask,
so everything outside the mask stays the photo's own pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InvalidInputError

CROP_SIDE = 512
FACE_SPAN = (80, 432)  # where the square of 1.5 box widths lands on the crop, both axes
SQUARE_PER_BOX_WIDTH = 1.5
# A 64 px wide face fills a 96 px square, enlarged 352 / 96 = 3.7 times: below that, the crop MagicFace
# reads is mostly interpolation blur, and the edit pasted back would be shrunk as much.
MIN_FACE_WIDTH = 64

# The mask around the face classes, in crop pixels, where the face box is about 235 px wide: an
# expression moves the mouth corners, cheeks and jaw line by up to a few per cent of that, so the
# region is grown by 16 px before it fades to nothing over 24 px more.
MASK_GROW = 16
MASK_FEATHER = 24
# The mask is exactly 0 this close to the crop's edge, so nothing at or past the square is touched.
MASK_BORDER = 8

# A warp shrinking its source below this scale averages the source down first: a bilinear warp reads
# four source pixels per output pixel and would alias the detail it skips.
AREA_SHRINK_BELOW = 0.5


def _as_3x3(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def _then(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The 2x3 affine map that applies `first`, then `second`."""
    return (_as_3x3(second) @ _as_3x3(first))[:2]


def _shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _warp(source: np.ndarray, matrix: np.ndarray, size: tuple[int, int], interpolation: int,
          border_mode: int) -> np.ndarray:
    """`source` warped onto a canvas of `size` (width, height) by `matrix` (source pixels -> canvas pixels)."""
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if scale < AREA_SHRINK_BELOW:
        height, width = source.shape[:2]
        small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        source = cv2.resize(source, small_size, interpolation=cv2.INTER_AREA)
        step_x, step_y = width / small_size[0], height / small_size[1]
        # An area-averaged pixel j covers source pixels [j * step, (j + 1) * step): its centre is source
        # pixel j * step + (step - 1) / 2.
        matrix = _then(np.array([[step_x, 0.0, (step_x - 1) / 2], [0.0, step_y, (step_y - 1) / 2]]), matrix)
    return cv2.warpAffine(source, matrix, size, flags=interpolation, borderMode=border_mode, borderValue=0)


def _footprint(matrix: np.ndarray, corners: np.ndarray, width: int, height: int,
               margin: int) -> tuple[int, int, int, int] | None:
    """The whole-pixel rectangle (x0, y0, x1, y1; x1/y1 exclusive) of a `width` x `height` image covering
    `corners` mapped by `matrix`, widened by `margin` px, or None where it misses the image."""
    mapped = _apply(matrix, corners)
    x0, y0 = np.floor(mapped.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(mapped.max(axis=0)).astype(int) + margin + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    return (int(x0), int(y0), int(x1), int(y1)) if x0 < x1 and y0 < y1 else None


def _check_rgb(image: np.ndarray, name: str) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be an H x W x 3 uint8 image, not {image.dtype} {image.shape}")


@dataclass(frozen=True, eq=False)
class EditCrop:
    """The affine map from a photo's pixels to the CROP_SIDE square MagicFace edits (2x3, pixel centres
    on whole coordinates, as cv2.warpAffine reads them)."""

    matrix: np.ndarray

    def __post_init__(self) -> None:
        matrix = np.array(self.matrix, dtype=np.float64)
        if matrix.shape != (2, 3):
            raise ValueError(f"an EditCrop's matrix is 2x3, not {matrix.shape}")
        matrix.setflags(write=False)
        object.__setattr__(self, "matrix", matrix)

    @classmethod
    def around(cls, box: tuple[float, float, float, float]) -> EditCrop:
        """The crop around a face's detected box (x0, y0, x1, y1, photo pixels): a square of 1.5 box widths,
        centred on the box, onto FACE_SPAN of the crop."""
        x0, y0, x1, y1 = (float(value) for value in box)
        width = x1 - x0
        if not all(math.isfinite(value) for value in (x0, y0, x1, y1)) or not width >= MIN_FACE_WIDTH:
            shown = max(width, 0.0) if math.isfinite(width) else 0.0
            raise InvalidInputError(
                f"The face is {shown:.0f} px wide in the photo; editing its expression needs a face at "
                f"least {MIN_FACE_WIDTH} px wide. Try a larger photo, or one taken closer to the face."
            )
        scale = (FACE_SPAN[1] - FACE_SPAN[0]) / (SQUARE_PER_BOX_WIDTH * width)
        centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
        middle = (FACE_SPAN[0] + FACE_SPAN[1]) / 2
        return cls(np.array([[scale, 0.0, middle - scale * centre_x], [0.0, scale, middle - scale * centre_y]]))

    @property
    def scale(self) -> float:
        """Crop pixels per photo pixel."""
        return float(math.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    @property
    def inverse(self) -> np.ndarray:
        """The 2x3 map from crop pixels back to photo pixels."""
        return cv2.invertAffineTransform(self.matrix)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Photo pixel positions (N x 2; further columns are ignored) as crop pixel positions (N x 2)."""
        return _apply(self.matrix, np.asarray(points, dtype=np.float64)[:, :2])

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Crop pixel positions (N x 2; further columns are ignored) as photo pixel positions (N x 2)."""
        return _apply(self.inverse, np.asarray(points, dtype=np.float64)[:, :2])

    def cut(self, rgb: np.ndarray) -> np.ndarray:
        """The CROP_SIDE x CROP_SIDE x 3 uint8 crop of an H x W x 3 uint8 photo; black where the square
        leaves the photo."""
        _check_rgb(rgb, "the photo")
        height, width = rgb.shape[:2]
        # Only the part of the photo under the square is read (and, for a large face, averaged down).
        reach = math.ceil(2 / min(self.scale, 1.0)) + 1
        edge = CROP_SIDE - 0.5
        corners = np.array([[-0.5, -0.5], [edge, -0.5], [-0.5, edge], [edge, edge]])
        region = _footprint(self.inverse, corners, width, height, margin=reach)
        if region is None:
            return np.zeros((CROP_SIDE, CROP_SIDE, 3), np.uint8)
        x0, y0, x1, y1 = region
        matrix = _then(_shift(x0, y0), self.matrix)
        return _warp(rgb[y0:y1, x0:x1], matrix, (CROP_SIDE, CROP_SIDE), cv2.INTER_LINEAR, cv2.BORDER_CONSTANT)

    def paste(self, original: np.ndarray, edited: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """`original` (H x W x 3 uint8) with `edited` (the crop after editing) blended in through `mask`
        (CROP_SIDE x CROP_SIDE float in [0, 1], 1 = edited), both warped back to the photo's pixels.
        Every pixel where the warped mask is 0 keeps the original's value exactly."""
        _check_rgb(original, "the photo")
        _check_rgb(edited, "the edited crop")
        square = (CROP_SIDE, CROP_SIDE)
        if edited.shape[:2] != square or np.shape(mask) != square:
            raise ValueError(f"the edited crop and its mask must be {CROP_SIDE} x {CROP_SIDE}, "
                             f"not {edited.shape[:2]} and {np.shape(mask)}")
        mask = np.asarray(mask, dtype=np.float32)
        if not (mask.min() >= 0.0 and mask.max() <= 1.0):
            raise ValueError("the mask's values must lie in [0, 1]")
        pasted = original.copy()
        rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        if not len(rows):
            return pasted
        # Only the photo pixels under the mask's nonzero part are computed, in floats.
        corners = np.array([[columns[0] - 1, rows[0] - 1], [columns[-1] + 1, rows[0] - 1],
                            [columns[0] - 1, rows[-1] + 1], [columns[-1] + 1, rows[-1] + 1]], dtype=np.float64)
        height, width = original.shape[:2]
        region = _footprint(self.inverse, corners, width, height, margin=2)
        if region is None:
            return pasted
        x0, y0, x1, y1 = region
        to_region = _then(self.inverse, _shift(-x0, -y0))
        size = (x1 - x0, y1 - y0)
        weight = _warp(mask, to_region, size, cv2.INTER_LINEAR, cv2.BORDER_CONSTANT)[:, :, None]
        # Replicated edges: where the mask reaches the crop's edge, no black seeps in from past it.
        blended = _warp(edited, to_region, size, cv2.INTER_CUBIC, cv2.BORDER_REPLICATE).astype(np.float32)
        photo = original[y0:y1, x0:x1].astype(np.float32)
        # photo + weight * (edit - photo), in place: exactly `photo` where the weight is 0.
        blended -= photo
        blended *= weight
        blended += photo
        pasted[y0:y1, x0:x1] = np.clip(np.rint(blended, out=blended), 0, 255).astype(np.uint8)
        return pasted


def _smoothstep(ramp: np.ndarray) -> np.ndarray:
    """0 -> 0 and 1 -> 1 with a flat start and end, for ramps clipped to [0, 1]."""
    ramp = np.clip(ramp, 0.0, 1.0)
    return ramp * ramp * (3.0 - 2.0 * ramp)


def soft_mask(region: np.ndarray, grow: int = MASK_GROW, feather: int = MASK_FEATHER) -> np.ndarray:
    """A CROP_SIDE square float32 mask: 1 on `region` (bool, CROP_SIDE square) grown by `grow` px, falling
    smoothly to 0 over `feather` px more, and exactly 0 within MASK_BORDER px of the crop's edge."""
    region = np.asarray(region)
    if region.shape != (CROP_SIDE, CROP_SIDE) or region.dtype != bool:
        raise ValueError(f"the region must be a {CROP_SIDE} x {CROP_SIDE} bool array, not {region.dtype} "
                         f"{region.shape}")
    if grow < 0 or feather < 0:
        raise ValueError("grow and feather are pixel counts, 0 or more")
    if not region.any():
        return np.zeros(region.shape, np.float32)
    # Euclidean distance from each pixel to the region (0 inside it).
    outside = np.where(region, 0, 255).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    if feather:
        mask = _smoothstep(1.0 - (distance - grow) / feather)
    else:
        mask = (distance <= grow).astype(np.float32)
    # The same fade at the crop's edge, ending in MASK_BORDER px of zeros.
    index = np.arange(CROP_SIDE, dtype=np.float32)
    to_edge = np.minimum(index, CROP_SIDE - 1 - index)
    edge_fade = _smoothstep((to_edge - MASK_BORDER + 1) / max(feather, 1))
    return (mask * np.minimum(edge_fade[:, None], edge_fade[None, :])).astype(np.float32)
