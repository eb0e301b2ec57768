"""User photos (a file, a PIL image or an array) decoded to the upright 8-bit RGB pixels the face models read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import InvalidInputError
from ..hub.weights import without_paths

Photo = Image.Image | np.ndarray | str | os.PathLike
# Beyond this the face detector (which works at 640x640 anyway) gains nothing, while hashing, resizing
# and alignment of a 50 MP photo would cost memory and time.
MAX_SIDE = 2048
# A photo file's pixels are counted from its header before anything is decoded: a 27 KB PNG can
# declare 12000x12000 pixels, over a gigabyte once decoded. 40 MP covers full-frame camera photos.
MAX_PIXELS = 40_000_000


def photo_label(photo: Photo, index: int) -> str:
    """How messages name a photo: 'photo 2 (beach.jpg)', or 'photo 2' when it has no file name."""
    name = photo if isinstance(photo, (str, os.PathLike)) else getattr(photo, "filename", "")
    return f"photo {index + 1} ({Path(name).name})" if name else f"photo {index + 1}"


def load_rgb(photo: Photo, label: str = "the photo", full_size: bool = False) -> np.ndarray:
    """Decode a path, PIL image or array to an upright HxWx3 uint8 RGB array (transparency over white).
    `full_size`: a photo over MAX_PIXELS is refused rather than decoded reduced (an edit keeps every pixel)."""
    if isinstance(photo, np.ndarray):
        return _array_to_rgb(photo, label)
    if isinstance(photo, (str, os.PathLike)):
        path = Path(photo)
        if not path.is_file():
            raise InvalidInputError(f"{label} could not be opened: there is no file at {path}.")
        try:
            with Image.open(path) as image:
                _fit_before_decoding(image, label, full_size)
                image.load()
                return _pil_to_rgb(image, label)
        except InvalidInputError:
            raise
        except Image.DecompressionBombError as exc:  # Pillow refuses beyond twice its own limit at open
            raise InvalidInputError(f"{label} has too many pixels to read: {exc}") from exc
        except Exception as exc:  # Pillow reports corrupt files as OSError, SyntaxError, struct.error, ...
            raise InvalidInputError(
                f"{label} could not be read as an image; the file may be damaged or not a photo "
                f"(use JPEG, PNG or WebP). Details: {without_paths(str(exc))}"
            ) from exc
    if isinstance(photo, Image.Image):
        try:
            return _pil_to_rgb(photo, label)
        except InvalidInputError:
            raise
        except Exception as exc:  # a lazily-loaded PIL image can still hit a corrupt file here
            raise InvalidInputError(f"{label} could not be decoded as an image. Details: {exc}") from exc
    raise InvalidInputError(
        f"{label} is a {type(photo).__name__}; expected an image file path, a PIL image or a numpy array."
    )


def _fit_before_decoding(image: Image.Image, label: str, full_size: bool) -> None:
    """Let a photo over MAX_PIXELS be decoded only reduced (JPEG decodes at 1/2 to 1/8 of its size, no
    smaller than the detector needs), unless it is wanted at `full_size`; refuse one that cannot be."""
    width, height = image.size
    if width * height <= MAX_PIXELS:
        return
    if not full_size:
        image.draft(image.mode, (MAX_SIDE, MAX_SIDE))  # a no-op for formats other than JPEG
    if image.size[0] * image.size[1] > MAX_PIXELS:
        raise InvalidInputError(
            f"{label} is {width}x{height} pixels ({width * height / 1e6:.0f} MP); photos of up to "
            f"{MAX_PIXELS / 1e6:.0f} MP are {'edited' if full_size else 'read (JPEG larger too)'}. "
            "Use a smaller copy of the photo."
        )


def _pil_to_rgb(image: Image.Image, label: str) -> np.ndarray:
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I") or image.mode == "F":
        # Pillow's convert("RGB") clips 16-bit values at 255 instead of scaling them.
        return _array_to_rgb(np.asarray(image), label, sixteen_bit=image.mode.startswith("I;16"))
    bands = image.getbands()
    if "A" in bands or "a" in bands or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def _array_to_rgb(array: np.ndarray, label: str, sixteen_bit: bool = False) -> np.ndarray:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or array.size == 0:
        raise InvalidInputError(
            f"{label} is an array of shape {tuple(array.shape)}; expected HxW, HxWx3 or HxWx4 pixels."
        )
    if array.dtype == np.uint8 and array.shape[2] in (1, 3):
        return np.ascontiguousarray(np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array)
    pixels = _to_unit_range(array, label, sixteen_bit)
    if pixels.shape[2] in (2, 4):
        alpha = pixels[:, :, -1:]
        pixels = pixels[:, :, :-1] * alpha + (1.0 - alpha)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(np.rint(pixels * 255.0).astype(np.uint8))


def _to_unit_range(array: np.ndarray, label: str, sixteen_bit: bool) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if np.issubdtype(array.dtype, np.integer):
        # Pillow's 32-bit "I" mode carries 16-bit PNGs; only the values can tell 8 from 16 bits there.
        full_scale = 65535.0 if sixteen_bit or array.dtype == np.uint16 or array.max() > 255 else 255.0
        return np.clip(array.astype(np.float32) / full_scale, 0.0, 1.0)
    if np.issubdtype(array.dtype, np.floating):
        values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        # Float images are 0-1 by convention (torchvision, skimage); larger values mean 0-255.
        full_scale = 1.0 if values.max() <= 1.0 else 255.0
        return np.clip(values / full_scale, 0.0, 1.0)
    raise InvalidInputError(f"{label} has pixel type {array.dtype}, which is not an image format.")
