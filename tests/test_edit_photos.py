"""A photo made ready to edit (the face chosen, read, cropped, its conditions drawn) and the edit pasted back
into it, through the Studio of `--random-weights`."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from fineface_ui.edit_settings import EditSettings
from fineface_ui.errors import CheckpointError, InvalidInputError, NoFaceError
from fineface_ui.faces import edit_inputs, photos
from fineface_ui.faces.au_reader import AUReader
from fineface_ui.faces.edit_inputs import EditPhotoReader
from fineface_ui.hub.model_sources import LANDMARK_FILE
from tests.app_fixtures import blank_photo, face_picture

TWO_FACES = ((40, 60, 200, 240), (300, 100, 420, 240))  # the first is the larger


@pytest.fixture(scope="module")
def reader(random_studio):
    return random_studio.edit_photo_reader()


def test_the_largest_face_is_read_and_cropped_by_default(reader, random_studio, tmp_path):
    photo = face_picture(tmp_path / "two.png", size=(480, 360), boxes=TWO_FACES)
    prepared = reader.read(photo)
    assert prepared.face.face_count == 2
    x0, y0, x1, y1 = prepared.face.box
    assert abs(x0 - 40) <= 3 and abs(x1 - 201) <= 3
    assert prepared.aus_read == random_studio.read_aus([photo])[0].aus  # the AU reader's own reading
    assert prepared.source.size == prepared.background.size == (512, 512)
    # The box's centre lands on the crop's centre, 1.5 box widths across 352 px.
    centre = prepared.crop.to_crop(np.array([[(x0 + x1) / 2, (y0 + y1) / 2]]))[0]
    assert np.allclose(centre, 256, atol=0.5)


def test_a_point_inside_a_face_picks_that_face_and_a_point_elsewhere_is_explained(reader, tmp_path):
    photo = face_picture(tmp_path / "two.png", size=(480, 360), boxes=TWO_FACES)
    assert abs(reader.read(photo, point=(350, 150)).face.box[0] - 300) <= 3
    with pytest.raises(InvalidInputError, match=r"No face is at \(10, 10\).*2 face"):
        reader.read(photo, point=(10, 10))


def test_the_background_condition_blacks_out_the_face_parts_and_keeps_the_rest(reader, tmp_path):
    prepared = reader.read(face_picture(tmp_path / "face.png"))
    source, background = np.asarray(prepared.source), np.asarray(prepared.background)
    kept = np.all(background == source, axis=2)
    black = np.all(background == 0, axis=2)
    # Outside the jaw's dots every pixel is either the source's or black (a face part).
    assert (kept | black).mean() > 0.99 and black.any() and kept.any()


@pytest.mark.parametrize("make, error, message", [
    (lambda path: blank_photo(path), NoFaceError, "No face was found in the photo"),
    (lambda path: face_picture(path, boxes=((100, 100, 150, 150),)), InvalidInputError, "64"),
])
def test_a_photo_without_a_face_or_with_a_face_too_small_is_refused_readably(reader, tmp_path, make, error, message):
    with pytest.raises(error, match=message):
        reader.read(make(tmp_path / "photo.png"))


def test_a_photo_over_the_pixel_cap_is_refused_not_reduced(reader, tmp_path, monkeypatch):
    # JPEG photos over the cap are read reduced elsewhere; an edit keeps every pixel, so it refuses them.
    monkeypatch.setattr(photos, "MAX_PIXELS", 100_000)
    monkeypatch.setattr(edit_inputs, "MAX_PIXELS", 100_000)
    path = tmp_path / "large.jpg"
    Image.open(face_picture(tmp_path / "face.png")).resize((480 * 2, 400 * 2)).save(path)
    with pytest.raises(InvalidInputError, match="are edited"):
        reader.read(path)
    with pytest.raises(InvalidInputError, match="are edited"):
        reader.read(np.zeros((400, 400, 3), np.uint8))


def test_a_face_pack_without_the_landmark_model_is_named(random_studio, tmp_path):
    pack = tmp_path / "models" / "buffalo_l"
    shutil.copytree(random_studio.au_reader().pack, pack)
    (pack / LANDMARK_FILE).unlink()
    au_reader = AUReader(model=random_studio.au_reader().model_path, face_pack=tmp_path)
    with pytest.raises(CheckpointError, match=LANDMARK_FILE):
        EditPhotoReader(au_reader, random_studio.edit_photo_reader().parser_path).read(face_picture(tmp_path / "f.png"))


def test_an_edit_keeps_the_photo_size_and_every_pixel_away_from_the_face(random_studio, tmp_path):
    photo = face_picture(tmp_path / "face.png", size=(900, 700), boxes=((300, 200, 480, 420),))
    prepared = random_studio.read_for_edit(photo)
    settings = EditSettings.create(prepared.aus_read, "AU12=4", num_inference_steps=2)
    output = random_studio.edit(prepared, settings)
    original = np.asarray(Image.open(photo).convert("RGB"))
    edited = np.asarray(output.images[0])
    assert edited.shape == original.shape
    changed = np.any(edited != original, axis=2)
    ys, xs = np.nonzero(changed)
    # The crop spans 1.5 box widths / 352 * 512 = 393 px around the face's centre (390, 310); nothing beyond.
    assert changed.any() and xs.min() >= 390 - 197 and xs.max() <= 390 + 197 and ys.min() >= 310 - 197
    assert np.array_equal(edited[:, :150], original[:, :150]) and np.array_equal(edited[550:], original[550:])
    assert output.metadata["aus"] == [settings.aus] and output.metadata["aus_read"] == prepared.aus_read
    assert output.metadata["photo"]["sha256"] == prepared.sha256 and "pixels" not in output.metadata


def test_an_edit_of_a_photo_turned_by_exif_comes_back_upright(random_studio, tmp_path):
    path = tmp_path / "turned.jpg"
    # Stored on its side; EXIF orientation 6 tells viewers to turn it a quarter clockwise.
    Image.open(face_picture(tmp_path / "face.png", size=(480, 400))).rotate(90, expand=True).save(
        path, exif=_orientation(6))
    prepared = random_studio.read_for_edit(path)
    assert prepared.original.shape[:2] == (400, 480)  # upright: as it is shown


def _orientation(value: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif


def test_a_face_running_past_the_photos_edge_keeps_magicfaces_crop_of_its_whole_box(reader, tmp_path, monkeypatch):
    # SCRFD's boxes may run past the frame; the crop is made from the box as found, not the part inside.
    photo = face_picture(tmp_path / "edge.png", size=(480, 400), boxes=((0, 100, 180, 340),))
    found, runs = edit_inputs.detected_faces(reader.au_reader.load()[0], np.asarray(Image.open(photo)))
    past_edge = replace(found[0], box=np.array([-60.0, 100, 140, 340], dtype=np.float32) * found[0].scale
                        + found[0].pad)
    monkeypatch.setattr(edit_inputs, "detected_faces", lambda detector, rgb: ([past_edge], runs))
    prepared = reader.read(photo)
    assert np.allclose(prepared.crop.to_crop(np.array([[40.0, 220.0]])), 256, atol=0.5)  # the box's centre
    assert prepared.crop.scale == pytest.approx(352 / (1.5 * 200))
    assert prepared.face.box[0] == 0  # shown and recorded inside the photo


def test_a_face_whose_features_the_parser_cannot_find_is_refused_not_returned_unedited(reader, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setattr(edit_inputs, "face_region", lambda labels: np.zeros(labels.shape, bool))
    with pytest.raises(InvalidInputError, match="features of the face .* could not be found"):
        reader.read(face_picture(tmp_path / "face.png"))
