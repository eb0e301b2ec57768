"""FaceEmbedder, run through InsightFace's real FaceAnalysis on a generated model pack.

The stand-in detector sees bright (luma > 160) squarish rectangles as faces,
so every photo here is a dark background with bright squares on it.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fineface_ui.errors import CheckpointError, InvalidInputError, MissingWeightsError, NoFaceError
from fineface_ui.faces import embedder as embedder_module
from fineface_ui.faces import photos
from fineface_ui.faces.embedder import FaceEmbedder, draw_face_box
from fineface_ui.faces.photos import load_rgb
from fineface_ui.hub import model_sources, weights
from fineface_ui.standins.tiny_face_models import write_model_pack

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # skimage deprecation inside insightface

HEIGHT, WIDTH = 480, 640
BACKGROUND = 30
WARM, COOL = (250, 222, 190), (190, 230, 252)


def photo(*squares: tuple[int, int, int, tuple[int, int, int]], size=(HEIGHT, WIDTH)) -> np.ndarray:
    """RGB uint8 photo: dark background with (x, y, side, colour) bright squares, lightly textured."""
    image = np.full((*size, 3), BACKGROUND, np.uint8)
    for x, y, side, colour in squares:
        ramp = np.linspace(0, 25, side, dtype=np.float32)[None, :, None]
        image[y : y + side, x : x + side] = np.clip(np.array(colour, np.float32) + ramp, 0, 255).astype(np.uint8)
    return image


ONE_FACE = (60, 100, 200, WARM)
ONE_FACE_BOX = (60, 100, 260, 300)


def assert_box(actual: tuple[int, int, int, int], expected: tuple[int, int, int, int], tolerance: float = 3) -> None:
    assert np.abs(np.subtract(actual, expected)).max() <= tolerance, f"box {actual} != {expected}"


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every test fails if anything tries to reach the network or InsightFace's downloaders."""

    def refuse(*args, **kwargs):
        pytest.fail("a download or network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("insightface.utils.storage.download_file", refuse)
    monkeypatch.setattr("insightface.app.face_analysis.ensure_available", refuse)
    monkeypatch.setattr("insightface.model_zoo.model_zoo.download_onnx", refuse)


@pytest.fixture(scope="module")
def pack_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("insightface")
    write_model_pack(root)
    return root


@pytest.fixture(scope="module")
def embedder(pack_root) -> FaceEmbedder:
    return FaceEmbedder(root=pack_root, providers=["CPUExecutionProvider"])


@pytest.fixture
def fresh_embedder(pack_root) -> FaceEmbedder:
    """An embedder with an empty cache and zeroed counters."""
    return FaceEmbedder(root=pack_root, providers=["CPUExecutionProvider"])


# --- one photo -------------------------------------------------------------------------


def test_a_photo_with_a_face_gives_one_unit_norm_512_float32_embedding(embedder):
    result = embedder.embed(photo(ONE_FACE))

    assert result.embeddings.dtype == torch.float32
    assert result.embeddings.shape == (1, 512)
    assert torch.linalg.vector_norm(result.embeddings[0]).item() == pytest.approx(1.0, abs=1e-5)


def test_the_reported_face_is_where_the_face_is_in_the_photo(embedder):
    (face,) = embedder.embed(photo(ONE_FACE)).faces

    assert face.face_count == 1
    assert_box(face.box, ONE_FACE_BOX)
    assert face.score > 0.9
    assert face.index == 0 and face.label == "photo 1"


def test_a_blank_photo_raises_no_face_error_naming_that_photo(embedder, tmp_path):
    blank = tmp_path / "empty_wall.png"
    Image.fromarray(photo()).save(blank)

    with pytest.raises(NoFaceError) as error:
        embedder.embed([photo(ONE_FACE), blank])

    assert "photo 2" in str(error.value)
    assert "empty_wall.png" in str(error.value)


def test_the_largest_of_two_faces_is_used_even_when_the_smaller_is_centred(embedder):
    big, small = (20, 20, 220, WARM), (280, 200, 90, COOL)

    result = embedder.embed([photo(small, big), photo(big)])

    assert result.faces[0].face_count == 2
    assert_box(result.faces[0].box, (20, 20, 240, 240))
    # The embedding is the big face's own: same as a photo showing only that face.
    assert cosine(result.embeddings[0], result.embeddings[1]) > 0.999


def test_colours_reach_insightface_in_its_bgr_order(embedder):
    orange, azure = (255, 170, 0), (0, 170, 255)  # luma 176 and 129: only orange is bright

    (face,) = embedder.embed(photo((60, 100, 200, orange))).faces

    assert_box(face.box, ONE_FACE_BOX)
    with pytest.raises(NoFaceError):
        embedder.embed(photo((60, 100, 200, azure)))


def test_a_face_filling_the_whole_photo_is_still_found(embedder):
    close_up = photo((0, 0, 300, WARM), size=(300, 300))

    (face,) = embedder.embed(close_up).faces

    assert_box(face.box, (0, 0, 300, 300))


def test_a_very_large_photo_is_downscaled_for_detection_but_the_box_is_in_its_own_pixels(
    fresh_embedder, monkeypatch
):
    fresh_embedder.embed(photo(ONE_FACE))  # loads the models so their detector can be watched
    detector = fresh_embedder._app.det_model
    seen_shapes = []
    original_detect = detector.detect

    def watched_detect(image, *args, **kwargs):
        seen_shapes.append(image.shape)
        return original_detect(image, *args, **kwargs)

    monkeypatch.setattr(detector, "detect", watched_detect)
    huge = photo((1000, 800, 1200, WARM), size=(2400, 3200))

    (face,) = fresh_embedder.embed(huge).faces

    assert max(seen_shapes[0][:2]) <= photos.MAX_SIDE
    assert_box(face.box, (1000, 800, 2200, 2000), tolerance=12)


# --- several photos ---------------------------------------------------------------------


def test_two_photos_give_two_rows_the_same_face_matches_and_another_does_not(embedder):
    warm_here, warm_elsewhere = photo((60, 100, 200, WARM)), photo((300, 150, 240, WARM))
    cool = photo((60, 100, 200, COOL))

    pair = embedder.embed([warm_here, warm_elsewhere]).embeddings
    other = embedder.embed(cool).embeddings[0]

    assert pair.shape == (2, 512)
    assert cosine(pair[0], pair[1]) > 0.99
    assert cosine(pair[0], other) < 0.9


def test_an_empty_list_of_photos_is_rejected(embedder):
    with pytest.raises(InvalidInputError, match="No photo"):
        embedder.embed([])


# --- every kind of photo a user can upload ------------------------------------------------


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb.mean(axis=2).astype(np.uint8)


def _transparent_face(rgb: np.ndarray) -> np.ndarray:
    """RGBA where the face is see-through black: only compositing on white makes it bright."""
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    x0, y0, x1, y1 = ONE_FACE_BOX
    rgba[y0:y1, x0:x1] = 0
    return rgba


def _palette_with_transparent_face(rgb: np.ndarray) -> Image.Image:
    x0, y0, x1, y1 = ONE_FACE_BOX
    indices = np.zeros(rgb.shape[:2], np.uint8)
    indices[y0:y1, x0:x1] = 1
    image = Image.frombytes("P", (rgb.shape[1], rgb.shape[0]), indices.tobytes())
    image.putpalette([BACKGROUND] * 3 + [0, 0, 0])
    image.info["transparency"] = 1
    return image


def _as_file(image: Image.Image, path: Path, **save_args) -> Path:
    image.save(path, **save_args)
    return path


MODES = {
    "RGBA, transparent face": lambda rgb, tmp: Image.fromarray(_transparent_face(rgb)),
    "LA, transparent face": lambda rgb, tmp: Image.fromarray(_transparent_face(rgb)).convert("LA"),
    "L": lambda rgb, tmp: Image.fromarray(_gray(rgb)),
    "1-bit": lambda rgb, tmp: Image.fromarray(_gray(rgb) > 128),
    "I;16": lambda rgb, tmp: Image.fromarray(_gray(rgb).astype(np.uint16) * 257),
    "16-bit PNG file": lambda rgb, tmp: _as_file(
        Image.fromarray(_gray(rgb).astype(np.uint16) * 257), tmp / "deep.png"
    ),
    "CMYK": lambda rgb, tmp: Image.fromarray(rgb).convert("CMYK"),
    "CMYK JPEG file": lambda rgb, tmp: _as_file(Image.fromarray(rgb).convert("CMYK"), tmp / "print.jpg", quality=95),
    "P": lambda rgb, tmp: Image.fromarray(rgb).quantize(colors=8),
    "P PNG file, transparent face": lambda rgb, tmp: _as_file(
        _palette_with_transparent_face(rgb), tmp / "palette.png"
    ),
    "numpy HxW uint8": lambda rgb, tmp: _gray(rgb),
    "numpy uint16": lambda rgb, tmp: rgb.astype(np.uint16) * 257,
    "numpy float 0-1": lambda rgb, tmp: rgb.astype(np.float32) / 255,
    "numpy float 0-255": lambda rgb, tmp: rgb.astype(np.float64),
    "numpy RGBA, transparent face": lambda rgb, tmp: _transparent_face(rgb),
}


@pytest.mark.parametrize("mode", MODES)
def test_every_photo_mode_is_read_as_rgb_and_gives_the_face(embedder, tmp_path, mode):
    source = MODES[mode](photo(ONE_FACE), tmp_path)

    (face,) = embedder.embed(source).faces

    assert_box(face.box, ONE_FACE_BOX)


def test_exif_orientation_is_applied_and_the_box_is_in_upright_pixels(embedder, tmp_path):
    upright = Image.fromarray(photo(ONE_FACE))
    # Orientation 6 tells viewers to turn the stored pixels 90 degrees clockwise.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _as_file(stored, tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)

    (face,) = embedder.embed(path).faces

    assert load_rgb(path).shape == (HEIGHT, WIDTH, 3)
    assert_box(face.box, ONE_FACE_BOX)


@pytest.mark.parametrize(
    "name, content",
    [
        ("broken.jpg", b"this is not a photo at all"),
        ("cut.jpg", "truncated"),
        ("nowhere.png", None),
    ],
)
def test_an_unreadable_file_gives_a_readable_invalid_input_error(embedder, tmp_path, name, content):
    path = tmp_path / name
    if content == "truncated":
        _as_file(Image.fromarray(photo(ONE_FACE)), path, quality=95)
        path.write_bytes(path.read_bytes()[:2000])
    elif content is not None:
        path.write_bytes(content)

    with pytest.raises(InvalidInputError) as error:
        embedder.embed([photo(ONE_FACE), path])

    assert not isinstance(error.value, NoFaceError)
    assert f"photo 2 ({name})" in str(error.value)


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 5), np.uint8), np.zeros((0, 4, 3), np.uint8), 42])
def test_values_that_are_not_photos_are_rejected(embedder, bad):
    with pytest.raises(InvalidInputError, match="photo 1"):
        embedder.embed(bad)


# --- cache ----------------------------------------------------------------------------------


def test_the_same_photo_is_not_detected_again_but_a_different_one_is(fresh_embedder):
    first = fresh_embedder.embed(photo(ONE_FACE))
    assert fresh_embedder.detector_runs == 1

    again = fresh_embedder.embed(Image.fromarray(photo(ONE_FACE)))  # same pixels, other container
    assert fresh_embedder.detector_runs == 1
    assert torch.equal(first.embeddings, again.embeddings)
    assert again.faces[0].box == first.faces[0].box

    fresh_embedder.embed(photo((300, 150, 240, COOL)))
    assert fresh_embedder.detector_runs == 2
    info = fresh_embedder.cache_info()
    assert (info.hits, info.misses, info.size) == (1, 2, 2)


def test_a_photo_without_a_face_is_not_searched_twice(fresh_embedder):
    for _ in range(2):
        with pytest.raises(NoFaceError):
            fresh_embedder.embed(photo())
    assert fresh_embedder.cache_info().hits == 1


def test_the_cache_forgets_the_least_recently_used_photo(fresh_embedder, monkeypatch):
    monkeypatch.setattr(embedder_module, "CACHE_SIZE", 2)
    a, b, c = photo((60, 100, 200, WARM)), photo((60, 100, 200, COOL)), photo((300, 150, 240, WARM))

    fresh_embedder.embed([a, b, a, c])  # c pushes out b, the least recently used
    runs = fresh_embedder.detector_runs
    fresh_embedder.embed(a)
    assert fresh_embedder.detector_runs == runs
    fresh_embedder.embed(b)
    assert fresh_embedder.detector_runs == runs + 1


# --- showing the chosen face ----------------------------------------------------------------


def test_draw_face_box_outlines_the_used_face_on_a_copy(embedder):
    source = photo(ONE_FACE)
    (face,) = embedder.embed(source).faces

    drawn = np.asarray(draw_face_box(source, face))

    assert drawn.shape == source.shape
    assert tuple(drawn[200, face.box[0]]) == (255, 60, 60)  # left edge
    assert (drawn[200, 160] == source[200, 160]).all()  # inside untouched
    assert (source[200, face.box[0]] != (255, 60, 60)).any()  # the input itself was not drawn on


# --- model files ----------------------------------------------------------------------------


def test_a_missing_pack_names_every_folder_looked_in_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "WEIGHTS_DIR", Path("weights"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    with pytest.raises(MissingWeightsError) as error:  # `offline` fails the test on any download try
        FaceEmbedder().embed(photo(ONE_FACE))

    message = str(error.value)
    assert "weights/insightface/models/buffalo_l (no such folder)" in message
    assert "~/.insightface/models/buffalo_l (no such folder)" in message
    assert model_sources.PACK_URL in message and "fineface-ui download" in message
    assert str(tmp_path) not in message  # no server paths


def test_download_fetches_the_pack_from_the_url_the_messages_name():
    from insightface.utils import storage

    assert storage.model_zoo_download_url("buffalo_l.zip") == model_sources.PACK_URL


def test_a_pack_missing_the_recognizer_says_which_file_is_missing(pack_root, tmp_path):
    pack = tmp_path / "models" / "buffalo_l"
    pack.mkdir(parents=True)
    (pack / "det_10g.onnx").write_bytes((pack_root / "models" / "buffalo_l" / "det_10g.onnx").read_bytes())

    with pytest.raises(MissingWeightsError, match="missing w600k_r50.onnx"):
        FaceEmbedder(root=tmp_path).embed(photo(ONE_FACE))


def test_corrupt_model_files_give_a_checkpoint_error_on_first_use(tmp_path):
    pack = tmp_path / "models" / "buffalo_l"
    pack.mkdir(parents=True)
    for name in ("det_10g.onnx", "w600k_r50.onnx"):
        (pack / name).write_bytes(b"\x00 not onnx")
    embedder = FaceEmbedder(root=tmp_path, providers=["CPUExecutionProvider"])

    with pytest.raises(CheckpointError, match="could not be loaded"):
        embedder.embed(photo(ONE_FACE))


# --- photo files: size and decoding -----------------------------------------------------------


def declared_png(path: Path, width: int, height: int) -> Path:
    """A grey PNG of the given size written row by row: a few KB on disk, width*height bytes decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\0" * (width + 1)  # filter byte 0, then the row's pixels
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def decodes(monkeypatch):
    """Sizes of the photo files decoded, recorded by Pillow's ImageFile.load (which returns at once,
    decoding nothing, when the image has no compressed tiles left)."""
    from PIL import ImageFile

    sizes, original = [], ImageFile.ImageFile.load

    def load(image):
        if image.tile:
            sizes.append(image.size)
        return original(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return sizes


def test_a_png_declaring_too_many_pixels_is_refused_without_decoding_it(embedder, tmp_path, decodes):
    bomb = declared_png(tmp_path / "bomb.png", 12000, 12000)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(InvalidInputError, match=r"photo 1 \(bomb.png\) is 12000x12000 pixels \(144 MP\).* 40 MP"):
        embedder.embed(str(bomb))
    assert decodes == []


def test_a_jpeg_with_too_many_pixels_is_decoded_reduced(tmp_path, monkeypatch, decodes):
    monkeypatch.setattr(photos, "MAX_PIXELS", 300_000, raising=False)
    monkeypatch.setattr(photos, "MAX_SIDE", 256, raising=False)
    Image.fromarray(photo(ONE_FACE, size=(1200, 1600))).save(tmp_path / "big.jpg")
    assert load_rgb(tmp_path / "big.jpg").shape == (300, 400, 3)  # decoded at a quarter of each side
    assert decodes == [(400, 300)]


def test_a_photo_file_sent_again_is_not_decoded_again(fresh_embedder, tmp_path, decodes):
    path = tmp_path / "face.png"
    Image.fromarray(photo(ONE_FACE)).save(path)
    first = fresh_embedder.embed(str(path))
    assert len(decodes) == 1
    again = fresh_embedder.embed(str(path))
    assert len(decodes) == 1 and torch.equal(first.embeddings, again.embeddings)
    assert fresh_embedder.cache_info().hits == 1


def test_the_face_models_of_a_studio_on_a_second_gpu_run_on_that_gpu(monkeypatch, tmp_path):
    # One process per GPU under `accelerate launch`: each one's ONNX sessions belong on its own GPU.
    import onnxruntime

    from fineface_ui.faces.detection import default_providers
    from fineface_ui.standins.tiny_face_models import write_model_pack
    from fineface_ui.studio import Studio

    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert default_providers("cuda:1") == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert default_providers("cuda") == default_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    write_model_pack(tmp_path)
    studio = Studio.from_pretrained(device="cuda:1", face_models=tmp_path)
    for name in ("faces", "reader"):
        assert studio._loaders[name]().providers[0] == ("CUDAExecutionProvider", {"device_id": 1})
