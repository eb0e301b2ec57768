"""The Edit a photo tab's handlers, called directly: no browser, the random-weight Studio (its detector takes a
bright rectangle for a face)."""

from __future__ import annotations

import json
import pickle

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from fineface_ui.aus import AU_NAMES
from fineface_ui.edit_settings import EDIT_SPEC
from fineface_ui.png_info import JSON_KEY
from fineface_ui.web import editing, readouts
from fineface_ui.web.rendering import Backend
from fineface_ui.web.session import EditKey, Result, Session
from tests.app_fixtures import blank_photo, face_picture

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # skimage deprecation inside insightface

TWO_FACES = ((40, 60, 200, 240), (300, 100, 420, 240))  # the first is the larger
STEPS = 2  # the fewest that still stream a glimpse before the result


def no_progress(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def backend(random_studio):
    return Backend(random_studio)


def upload(tmp_path, name="portrait.png", **picture):
    """A photo as Gradio hands an upload over: a file in its cache folder, deleted once read."""
    (tmp_path / "cache").mkdir(exist_ok=True)
    return str(face_picture(tmp_path / "cache" / name, **picture))


def dropped(backend, tmp_path, **picture) -> tuple[Session, list]:
    state = Session()
    return state, editing.read_photo(backend, state, upload(tmp_path, **picture))


def tab_values(state: Session, **changes) -> dict:
    """The tab's values as a drop leaves them (the sliders at the values read), with `changes`."""
    values = {name: editing.shown(state.edits.photo.aus_read[name]) for name in AU_NAMES}
    values.update({name: setting.default for name, setting in EDIT_SPEC.items()}, num_inference_steps=STEPS)
    return {**values, **changes}


def click(x: int, y: int) -> gr.SelectData:
    """A click on the photo at pixel (x, y), as Gradio reports it."""
    return gr.SelectData(None, {"index": [x, y], "value": None})


def test_a_dropped_photo_sets_the_sliders_to_the_values_read_and_keeps_an_upright_copy(backend, random_studio,
                                                                                      tmp_path):
    photo = upload(tmp_path)
    expected = random_studio.read_for_edit(photo)
    state = Session()
    *aus, note, boxed, result, compare, download, readout, readout_note, metadata = editing.read_photo(
        backend, state, photo)
    assert aus == [round(expected.aus_read[name], 1) for name in AU_NAMES]
    assert "One face found" in note and "portrait.png" in note and "non-commercial research" in note
    assert isinstance(boxed, Image.Image) and boxed.size == (480, 400)
    assert result["value"] is None and compare is None and download["interactive"] is False
    assert not readout["visible"] and not readout_note["visible"] and metadata is None
    assert not (tmp_path / "cache" / "portrait.png").exists()  # read, then deleted from Gradio's cache
    assert np.array_equal(np.asarray(Image.open(state.edits.before)), expected.original)
    assert state.edits.photo.aus_read == expected.aus_read


def test_an_au_left_at_the_value_its_slider_shows_keeps_the_exact_value_read(backend, tmp_path):
    state, _ = dropped(backend, tmp_path)
    photo = state.edits.photo
    settings = editing.edit_settings(photo, tab_values(state, AU12=5.0))
    assert settings.aus == {**photo.aus_read, "AU12": 5.0}
    assert [name for name, change in zip(AU_NAMES, settings.change()) if change] == ["AU12"]


def test_an_edit_keeps_the_photos_size_and_its_png_holds_the_settings_but_not_the_photo(backend, tmp_path):
    state, _ = dropped(backend, tmp_path)
    arrivals = list(editing.render_edit(backend, state, no_progress, **tab_values(state, AU12=5.0)))
    assert arrivals[0][0]["label"].startswith("Editing: step 1 of")  # streamed: glimpses first
    shown, compare, history, download, metadata = arrivals[-1]
    [result] = state.edits.history
    assert shown["value"] == str(result.path) and shown["label"] == editing.RESULT_LABEL
    with Image.open(result.path) as png:
        assert png.size == (480, 400)
        stored = json.loads(png.text[JSON_KEY])
        assert sum(len(text) for text in png.text.values()) < 20_000  # settings, never pixels
    assert stored["aus"][0]["AU12"] == 5.0 and stored["photo"]["face_box"] == list(state.edits.photo.face.box)
    assert stored["aus_read"] == state.edits.photo.aus_read
    assert compare == (str(state.edits.before), str(result.path))
    assert history["value"] == [(str(result.path), "AU12=5 · seed 0")]
    assert download["value"].endswith("fineface-edit-seed0-AU12_5.png") and metadata == stored

    again = list(editing.render_edit(backend, state, no_progress, **tab_values(state, AU12=5.0)))
    assert again == [(shown, *[gr.skip()] * 4)] and len(state.edits.history) == 1  # nothing changed: no edit

    chart, note, download, metadata = readouts.measure_edit(backend, state, True)
    assert set(chart["value"]["kind"]) == {"read from the photo", "asked for", "read back from the edit"}
    assert set(metadata["measured_aus"]) == set(AU_NAMES) and "random stand-in" in note["value"]
    with Image.open(download["value"]) as png:
        assert json.loads(png.text[JSON_KEY])["measured_aus"] == metadata["measured_aus"]


def test_a_photo_without_a_face_is_explained_and_nothing_is_left_to_edit(backend, tmp_path):
    state, _ = dropped(backend, tmp_path)
    (tmp_path / "cache" / "wall").mkdir(parents=True)
    wall = str(blank_photo(tmp_path / "cache" / "wall" / "empty_wall.png"))
    *aus, note, photo, _, _, _, _, _, _ = editing.read_photo(backend, state, wall)
    assert aus == [gr.skip()] * len(AU_NAMES) and photo is None
    assert "No face was found in the photo (empty_wall.png)" in note
    assert state.edits.photo is None and state.edits.before is None
    with pytest.raises(gr.Error, match="Drop a photo with a face first"):
        next(editing.render_edit(backend, state, no_progress, **dict.fromkeys(editing.EDIT_VALUES, 0)))


def test_a_click_on_another_face_edits_that_face_and_a_click_beside_them_keeps_the_face(backend, random_studio,
                                                                                       tmp_path):
    state, first = dropped(backend, tmp_path, size=(480, 360), boxes=TWO_FACES)
    assert "The largest of 2 faces" in first[len(AU_NAMES)]
    clicked = random_studio.read_for_edit(state.edits.before, (350, 150))
    *aus, note, boxed, _, _, _, _, _, _ = editing.pick_face(backend, state, click(350, 150))
    assert abs(state.edits.photo.face.box[0] - 300) <= 3 and "The face you clicked, of 2 faces" in note
    assert aus == [round(clicked.aus_read[name], 1) for name in AU_NAMES]
    beside = editing.pick_face(backend, state, click(10, 10))
    assert beside == [gr.skip()] * len(beside) and abs(state.edits.photo.face.box[0] - 300) <= 3


def test_an_edit_of_another_photo_clicked_in_the_history_is_shown_but_leaves_the_sliders(backend, tmp_path):
    state, _ = dropped(backend, tmp_path)
    photo = state.edits.photo
    other = Result(state.edits.before, {"aus": [photo.aus_read], "au_change": dict.fromkeys(AU_NAMES, 0.0), "seed": 0},
                   EditKey(editing.edit_settings(photo, tab_values(state)), "another photo", photo.face.box,
                           state.edits.before))
    state.edits.history = [other]
    event = gr.SelectData(None, {"index": 0, "value": {"image": {"path": f"/cache/{other.path.name}"}}})
    *values, shown, compare, download, metadata = editing.restore_edit(state, event)
    assert values == [gr.skip()] * len(editing.EDIT_VALUES) and shown["value"] == str(other.path)
    assert state.edits.shown is other

    state.edits.history = [Result(other.path, other.metadata, other.key._replace(photo=photo.sha256))]
    *values, _, _, _, _ = editing.restore_edit(state, event)
    assert values == list(tab_values(state, num_inference_steps=STEPS).values())  # the same face: restored


def test_stop_during_an_edit_ends_it_and_shows_the_edit_shown_before(backend, tmp_path):
    state, _ = dropped(backend, tmp_path)
    stops = []

    def press_stop_in_the_first_step(*args, **kwargs):  # the progress bar's update, once a step is done
        if not stops:
            stops.append(editing.stop_edit(state))

    arrivals = list(editing.render_edit(backend, state, press_stop_in_the_first_step, **tab_values(state, AU12=5)))
    assert stops == [gr.skip()]  # nothing edited before: the glimpse stays until the run ends
    (glimpse, *_), (shown, *others) = arrivals
    assert glimpse["label"].startswith("Editing: step 1 of")
    assert shown == {"value": None, "label": editing.RESULT_LABEL, "__type__": "update"}
    assert others == [gr.skip()] * 4 and state.edits.history == []


def test_a_drag_previews_the_edit_and_back_to_the_photo_sets_the_values_read_again(backend, tmp_path):
    state, _ = dropped(backend, tmp_path)
    preview = editing.preview_edit(backend, state, **tab_values(state, AU12=5.0))
    assert preview["label"] == editing.PREVIEW_LABEL and preview["value"].size == (480, 400)
    assert editing.back_to_photo(state) == [tab_values(state)[name] for name in AU_NAMES]
    assert editing.back_to_photo(Session()) == [gr.skip()] * len(AU_NAMES)  # no photo: the edit says so


def test_a_session_pickled_into_a_gpu_worker_leaves_the_full_size_photo_behind(backend, tmp_path):
    state, _ = dropped(backend, tmp_path)
    copy = pickle.loads(pickle.dumps(state))
    assert copy.edits.photo is None and copy.edits.before == state.edits.before and state.edits.photo is not None
