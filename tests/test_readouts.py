"""The page's readings, handler by handler: copying an expression, measuring a result into its PNG, and
the measured curve of a sweep. The reader and detector are the random stand-ins."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from fineface_ui.aus import AU_NAMES
from fineface_ui.png_info import read_settings
from fineface_ui.web import handlers, readouts
from fineface_ui.web.rendering import Backend
from fineface_ui.web.session import Session
from tests.app_fixtures import face_picture
from tests.test_handlers import no_progress, page, render

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # skimage deprecation inside insightface


@pytest.fixture(scope="module")
def backend(random_studio):
    return Backend(random_studio)


def test_a_reference_photo_sets_the_sliders_to_one_decimal_and_leaves_the_upload_cache(backend, random_studio,
                                                                                       tmp_path):
    (tmp_path / "cache").mkdir()
    upload = face_picture(tmp_path / "cache" / "reference.png")
    [reading] = random_studio.read_aus([upload])
    *aus, preset, note, boxed = readouts.copy_from_reference(backend, str(upload))
    assert aus == [round(reading.aus[name], 1) for name in AU_NAMES] and preset is None
    assert "photo 1 (reference.png)" in note and "random stand-in" in note
    assert isinstance(boxed, Image.Image) and boxed.size == (480, 400)
    assert not upload.exists()  # read, then deleted from Gradio's cache


def test_the_first_face_photo_gives_its_expression(backend, random_studio, tmp_path):
    photo = face_picture(tmp_path / "me.png")
    [reading] = random_studio.read_aus([photo])
    *aus, preset, note = readouts.copy_from_face_photo(backend, Session(), [str(photo)])
    assert aus == [round(reading.aus[name], 1) for name in AU_NAMES] and "me.png" in note
    with pytest.raises(gr.Error, match="Add a face photo first"):
        readouts.copy_from_face_photo(backend, Session(), None)


def measured_render(backend: Backend, fast) -> Session:
    state = Session()
    render(backend, state, None, True, False, no_progress, **page(fast, AU12=3.0))
    return state


def test_a_measured_result_carries_what_was_read_in_its_png(backend, random_studio, fast):
    state = measured_render(backend, fast)
    path: Path = state.history[0].path
    [reading] = random_studio.read_aus([path])
    plot, note, download, metadata = readouts.measure_result(backend, state, True)
    stored = read_settings(download["value"])  # the PNG the download button gives
    assert stored["measured_aus"] == {name: round(value, 2) for name, value in reading.aus.items()}
    assert stored["au_reader"] == random_studio.au_reader().provenance() and metadata == stored
    assert stored["aus"][0]["AU12"] == 3.0  # the settings themselves unchanged
    rows = plot["value"]
    assert plot["visible"] and len(rows) == 2 * len(AU_NAMES)
    asked = rows[(rows["AU"] == "AU12") & (rows["kind"] == readouts.ASKED)]["intensity"]
    assert list(asked) == [3.0]
    assert download["interactive"] and note["visible"]
    assert "measured_aus" not in read_settings(path)  # the file shown is left as the page has it


def test_with_measuring_off_the_readout_hides_and_the_png_is_left(backend, fast):
    state = measured_render(backend, fast)
    plot, note, download, metadata = readouts.measure_result(backend, state, False)
    assert not plot["visible"] and not note["visible"] and download == metadata == gr.skip()
    assert "measured_aus" not in read_settings(state.history[0].path)


def test_a_result_without_a_readable_face_says_it_was_not_measured(backend, fast):
    state = measured_render(backend, fast)
    Image.new("RGB", (256, 256), (30, 30, 30)).save(state.history[0].path)  # nothing bright: no face
    plot, note, *_ = readouts.measure_result(backend, state, True)
    assert not plot["visible"] and note["value"] == "Not measured: no face was found in this image."


def test_a_sweep_is_read_back_frame_by_frame_beside_the_diagonal(backend, fast):
    state = Session()
    handlers.render_sweep(backend, state, None, "AU12", 0.0, 4.0, 3, no_progress, **page(fast))
    curve = readouts.measure_sweep(backend, state, True)
    rows = curve["value"]
    diagonal = rows[rows["series"] == readouts.ASKED]
    assert list(diagonal["asked"]) == [0.0, 2.0, 4.0] and list(diagonal["read"]) == [0.0, 2.0, 4.0]
    read = rows[rows["series"] == readouts.READ]
    assert list(read["asked"]) == [0.0, 2.0, 4.0] and all(0 <= value <= 5 for value in read["read"])
    assert "AU12" in curve["title"] and not readouts.measure_sweep(backend, state, False)["visible"]


def test_a_measurement_overtaken_by_a_newer_render_leaves_that_renders_download_and_settings(backend, fast,
                                                                                            monkeypatch):
    state = measured_render(backend, fast)
    newer = measured_render(backend, fast).history[0]
    read = readouts.read_one

    def read_while_a_render_ends(*args):
        state.history.insert(0, newer)  # the next render finishes during the read
        return read(*args)

    monkeypatch.setattr(readouts, "read_one", read_while_a_render_ends)
    plot, _, download, metadata = readouts.measure_result(backend, state, True)
    assert plot["visible"] and download == metadata == gr.skip()
