"""Reading expressions: the alignment LibreFace was trained on, the network's output on our AU scale, and
the model file fetched and checked like the others. Faces are bright rectangles to the stand-in detector."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fineface_ui.aus import AU_NAMES
from fineface_ui.errors import CheckpointError, DownloadError, InvalidInputError, MissingWeightsError, NoFaceError
from fineface_ui.faces import au_reader as reader_module
from fineface_ui.faces.alignment import INPUT_SIDE, aligned, aligned_face, network_input
from fineface_ui.faces.au_reader import AUReader
from fineface_ui.faces.detection import Detection
from fineface_ui.hub import model_sources, pinned, weights
from fineface_ui.standins.tiny_au_reader import build_au_reader, write_au_reader
from fineface_ui.standins.tiny_face_models import write_model_pack
from tests.app_fixtures import face_picture

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # skimage deprecation inside insightface

# Eyes 100 px apart, the mouth 120 px below them: FFHQ's square is 2 * max(2 * 100, 1.8 * 120) = 432 px
# wide, centred 0.1 of the way from the eyes to the mouth.
UPRIGHT = np.array([[200, 200], [300, 200], [250, 260], [210, 320], [290, 320]], dtype=np.float64)
SIDE, CENTRE = 432.0, np.array([250.0, 212.0])


def where_in_crop(point: np.ndarray) -> np.ndarray:
    """The crop pixel an image point of the upright face lands on, by the definition: the square's edges
    are the 512 px image's, halved to 256 px, 16 px cut off each side (pixel centres on whole numbers)."""
    in_square = (point - (CENTRE - SIDE / 2)) / SIDE * 512
    return ((in_square - 0.5) - 0.5) / 2 - 16


def coordinate_images(height: int = 600, width: int = 600) -> list[Image.Image]:
    """The pixels' own x and their own y as two float images: warped, they tell where each pixel came from."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return [Image.fromarray(xs, mode="F"), Image.fromarray(ys, mode="F")]


def test_the_crop_puts_the_eyes_and_mouth_where_the_alignment_says_to_a_pixel():
    xs, ys = (np.asarray(aligned(image, UPRIGHT)) for image in coordinate_images())
    assert xs.shape == (INPUT_SIDE, INPUT_SIDE)
    crop_pixel = SIDE / 512 * 2  # image pixels per crop pixel
    for point in UPRIGHT[[0, 1, 3, 4]]:
        column, row = np.round(where_in_crop(point)).astype(int)
        assert abs(xs[row, column] - point[0]) <= crop_pixel / 2 + 0.05
        assert abs(ys[row, column] - point[1]) <= crop_pixel / 2 + 0.05


def test_a_rotated_face_gives_the_same_crop_as_the_upright_one():
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (600, 600, 3)).astype(np.float32), (0, 0), 6)
    picture = np.clip((noise - noise.mean()) * 8 + 128, 0, 255).astype(np.uint8)  # smooth, full contrast
    turn = cv2.getRotationMatrix2D((300, 300), 25, 1.0)
    turned = cv2.warpAffine(picture, turn, (600, 600), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    turned_points = np.c_[UPRIGHT, np.ones(5)] @ turn.T
    upright, rotated = (aligned_face(image, points).astype(float) for image, points in
                        ((picture, UPRIGHT), (turned, turned_points)))
    elsewhere = aligned_face(picture, UPRIGHT + 40).astype(float)
    assert np.abs(upright - rotated).mean() < 0.1 * np.abs(upright - elsewhere).mean()


def test_the_network_input_is_rgb_planes_normalised_as_imagenet():
    face = np.zeros((INPUT_SIDE, INPUT_SIDE, 3), np.uint8)
    face[..., 0] = 255  # red
    planes = network_input(face)
    assert planes.shape == (1, 3, INPUT_SIDE, INPUT_SIDE) and planes.dtype == np.float32
    assert np.allclose(planes[0, :, 0, 0], [(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225], atol=1e-5)


class FixedNetwork:
    """Answers every face with the same raw outputs, as the ONNX session's `run` does."""

    def __init__(self, raw):
        self.raw = np.asarray([raw], dtype=np.float32)

    def run(self, names, feeds):
        assert names == ["AUs"] and feeds["image"].shape == (1, 3, INPUT_SIDE, INPUT_SIDE)
        return [self.raw]


def a_detection() -> Detection:
    return Detection(np.zeros((600, 600, 3), np.uint8), np.array([150, 150, 350, 380.0]), UPRIGHT, 0.9, 1, 1.0, 0)


def test_outputs_become_intensities_times_five_clamped_to_the_trained_range():
    raw = [0.0, 0.1, 0.5, 1.0, 1.2, -0.3, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8]
    values = AUReader.intensities(FixedNetwork(raw), a_detection())
    assert list(values) == list(AU_NAMES)
    assert np.allclose(list(values.values()), [0, 0.5, 2.5, 5, 5, 0, 1, 1.5, 2, 3, 3.5, 4])


def test_outputs_are_matched_to_our_aus_by_name_not_by_position(monkeypatch):
    # Were the network's order another, the values would follow the names.
    monkeypatch.setattr(reader_module, "OUTPUT_AUS", tuple(reversed(reader_module.OUTPUT_AUS)))
    values = AUReader.intensities(FixedNetwork([k / 20 for k in range(12)]), a_detection())
    assert values["AU26"] == 0.0 and values["AU1"] == pytest.approx(11 / 20 * 5)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reader")
    write_model_pack(root / "faces")
    return {"model": write_au_reader(root / "au_reader.onnx"), "face_pack": root / "faces"}


@pytest.fixture(scope="module")
def reader(models) -> AUReader:
    return AUReader(**models)


def test_a_photo_gives_twelve_named_intensities_in_range_and_the_face_used(reader, tmp_path):
    [reading] = reader.read([face_picture(tmp_path / "me.png")])
    assert list(reading.aus) == list(AU_NAMES) and all(0 <= value <= 5 for value in reading.aus.values())
    assert np.abs(np.subtract(reading.face.box, (120, 100, 301, 321))).max() <= 3
    assert reading.face.face_count == 1 and reading.face.label == "photo 1 (me.png)"


def test_of_several_faces_the_largest_is_read(reader, tmp_path):
    both = face_picture(tmp_path / "two.png", size=(640, 400), boxes=((20, 40, 140, 180), (300, 60, 500, 300)))
    alone = face_picture(tmp_path / "one.png", size=(640, 400), boxes=((300, 60, 500, 300),))
    [in_group], [by_itself] = reader.read([both]), reader.read([alone])
    assert in_group.face.face_count == 2 and in_group.face.box == by_itself.face.box
    assert in_group.aus == pytest.approx(by_itself.aus, abs=0.05)


def test_an_exif_rotated_photo_reads_as_the_upright_one(reader, tmp_path):
    upright = face_picture(tmp_path / "upright.jpg")
    sideways = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: show rotated 90 degrees clockwise
    Image.open(upright).transpose(Image.Transpose.ROTATE_90).save(sideways, exif=exif, quality=95)
    [first], [second] = reader.read([upright]), reader.read([sideways])
    assert first.face.box == second.face.box
    assert first.aus == pytest.approx(second.aus, abs=0.1)


def test_a_photo_without_a_face_is_named_and_a_bad_file_is_readable(reader, tmp_path):
    Image.new("RGB", (300, 300), (30, 30, 30)).save(tmp_path / "wall.png")
    with pytest.raises(NoFaceError, match=r"photo 1 \(wall.png\)"):
        reader.read([tmp_path / "wall.png"])
    Image.new("RGB", (2, 2), (250, 250, 250)).save(tmp_path / "dot.png")
    with pytest.raises(NoFaceError, match=r"photo 1 \(dot.png\)"):
        reader.read([tmp_path / "dot.png"])
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(InvalidInputError, match="could not be read as an image") as refused:
        reader.read([tmp_path / "notes.png"])
    assert str(tmp_path) not in str(refused.value)  # the library's text names the file, not the server's folder
    with pytest.raises(InvalidInputError, match="No photo"):
        reader.read([])


def test_a_truncated_or_foreign_model_file_is_a_clear_error(models, tmp_path, monkeypatch):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(models["model"].read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="could not be loaded"):
        AUReader(model=truncated, face_pack=models["face_pack"]).read([face_picture(tmp_path / "me.png")])
    model = build_au_reader()
    model.graph.output[0].name = model.graph.node[-1].output[0] = "logits"
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(model.SerializeToString())
    with pytest.raises(CheckpointError, match="is not LibreFace's AU model"):
        AUReader(model=foreign, face_pack=models["face_pack"]).read([face_picture(tmp_path / "me.png")])


class Server:
    """Files of a folder over HTTP on 127.0.0.1, as GitHub serves the model."""

    def __init__(self, folder: Path) -> None:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *args: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def served(models, tmp_path, monkeypatch):
    """The stand-in model served at a URL, the catalogue entry pinned to its sha256, an empty weights folder."""
    folder = tmp_path / "github"
    folder.mkdir()
    (folder / "reader.onnx").write_bytes(models["model"].read_bytes())
    server = Server(folder)
    sha = hashlib.sha256(models["model"].read_bytes()).hexdigest()
    entry = replace(model_sources.AU_READER, url=f"{server.url}/reader.onnx", sha256=sha)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.delenv("FINEFACE_AU_READER", raising=False)
    yield entry
    server.close()


def test_the_model_is_fetched_into_the_weights_folder_and_checked(served, monkeypatch):
    monkeypatch.setattr(weights, "hub_reachable", lambda: True)  # online, as the app asks before fetching
    path = pinned.pinned_path(served)
    assert path == weights.WEIGHTS_DIR / "libreface" / "reader.onnx" and pinned.sha256_of(path) == served.sha256
    assert pinned.locate_pinned(served) == path


def test_a_download_with_another_hash_is_refused_naming_both_and_deleted(served):
    wrong = replace(served, sha256="0" * 64)
    with pytest.raises(DownloadError) as refused:
        pinned.fetch_pinned(wrong)
    assert "0" * 64 in str(refused.value) and served.sha256 in str(refused.value)
    assert list((weights.WEIGHTS_DIR / "libreface").iterdir()) == []


def test_a_file_in_the_weights_folder_with_another_hash_is_not_used(served):
    path = weights.WEIGHTS_DIR / "libreface" / "reader.onnx"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"a different file")
    with pytest.raises(CheckpointError, match=f"expected {served.sha256}"):
        pinned.pinned_path(served)


def test_offline_a_missing_model_says_how_to_get_it(served, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(weights, "hub_reachable", lambda: False)
    with pytest.raises(MissingWeightsError) as missing:
        pinned.pinned_path(served)
    assert "fineface-ui download" in str(missing.value) and served.url in str(missing.value)
    assert "weights/libreface/" in str(missing.value) or "$FINEFACE_WEIGHTS_DIR/libreface" in str(missing.value)


def test_the_variable_points_at_another_file_used_as_it_is(served, models, monkeypatch):
    monkeypatch.setenv("FINEFACE_AU_READER", str(models["model"]))
    assert pinned.pinned_path(served) == models["model"] and pinned.locate_pinned(served) == models["model"]


@pytest.mark.parametrize(("value", "reason"), [("/nowhere/reader.onnx", "there is no such file"),
                                               ("reader.onnx", "there is no such file"),
                                               ("not a repo!", "neither a file nor a Hub repo id")])
def test_a_variable_naming_nothing_usable_says_so(served, monkeypatch, value, reason):
    monkeypatch.setenv("FINEFACE_AU_READER", value)
    with pytest.raises(MissingWeightsError, match=reason):
        pinned.pinned_path(served)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fineface_ui", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_read_aus_prints_twelve_named_values_as_json_and_exit_2_without_a_face(tmp_path):
    face_picture(tmp_path / "me.png")
    Image.new("RGB", (300, 300), (30, 30, 30)).save(tmp_path / "wall.png")
    done = cli("read-aus", "--random-weights", "me.png", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [reading] = json.loads(done.stdout)
    assert list(reading["aus"]) == list(AU_NAMES) and all(0 <= v <= 5 for v in reading["aus"].values())
    assert reading["photo"] == "me.png" and reading["face"]["faces_found"] == 1
    refused = cli("read-aus", "--random-weights", "wall.png", cwd=tmp_path)
    assert refused.returncode == 2 and "No face was found in photo 1 (wall.png)" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_generate_copies_the_expression_read_from_a_photo_and_au_values_win(tmp_path):
    from fineface_ui.png_info import read_settings

    face_picture(tmp_path / "me.png")
    read = cli("read-aus", "--random-weights", "me.png", "--json", cwd=tmp_path)
    [reading] = json.loads(read.stdout)
    made = cli("generate", "--random-weights", "--prompt", "a face", "--aus-from", "me.png", "--au", "AU26=0",
               "--steps", "2", "--height", "256", "--width", "256", "--out", "copy.png", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    [aus] = read_settings(tmp_path / "copy.png")["aus"]
    assert aus["AU26"] == 0
    assert all(abs(aus[name] - reading["aus"][name]) <= 0.051 for name in AU_NAMES if name != "AU26")
    assert all(aus[name] == round(aus[name], 1) for name in AU_NAMES)


def test_the_benchmarks_reader_is_libreface_sized_and_reads_like_the_real_one(models, tmp_path):
    from fineface_ui.standins.full_size_reader import write_full_size_reader

    path = write_full_size_reader(tmp_path / "resnet18.onnx")
    assert abs(path.stat().st_size - 45_197_696) < 0.01 * 45_197_696  # the real file's size, within 1%
    [reading] = AUReader(model=path, face_pack=models["face_pack"]).read([face_picture(tmp_path / "me.png")])
    assert list(reading.aus) == list(AU_NAMES) and all(0 <= value <= 5 for value in reading.aus.values())


def test_doctor_says_whether_and_where_the_reader_is(served, models, monkeypatch):
    from fineface_ui import doctor

    monkeypatch.setattr(weights, "hub_reachable", lambda: False)
    monkeypatch.setattr(doctor, "AU_READER", served)
    assert "MISSING LibreFace AU intensity model reader.onnx" in doctor.report()
    monkeypatch.setenv("FINEFACE_AU_READER", str(models["model"]))
    assert f"found   LibreFace AU intensity model: {models['model']}" in doctor.report()
