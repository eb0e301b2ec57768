"""Reading expressions on the page, in a real headless Chromium: copying one from a photo onto the sliders,
and the readout of each result. The reader and detector are the random stand-ins (bright rectangles are faces)."""

from __future__ import annotations

from playwright.sync_api import expect

from fineface_ui.aus import ACTION_UNITS, format_aus
from tests.app_fixtures import blank_photo, face_picture
from tests.browser_page import BROWSER_TESTS, RENDER_MS, slider, wait_for_history

pytest_plugins = ["tests.browser_page"]  # its fixtures: app_url, browser, page

pytestmark = BROWSER_TESTS


def label(au) -> str:
    return f"{au.name} · {au.facs_name}"


def test_a_reference_photo_moves_the_sliders_to_the_values_read_and_renders_them(page, random_studio, tmp_path):
    photo = face_picture(tmp_path / "reference.png")
    [reading] = random_studio.read_aus([photo])
    expected = {name: round(value, 1) for name, value in reading.aus.items()}
    page.get_by_text("Copy an expression from a photo").click()
    page.locator("#reference-photo input[type=file]").set_input_files(photo)
    page.locator("#copy-note").get_by_text("Expression copied from photo 1 (reference.png)").wait_for(timeout=RENDER_MS)
    for au in ACTION_UNITS:
        assert float(slider(page, label(au), "number input").input_value()) == expected[au.name]
    wait_for_history(page, f"{format_aus(expected)} · seed 0")  # rendered with the copied expression
    assert "random stand-in" in page.locator("#copy-note").inner_text()


def test_a_reference_photo_without_a_face_says_so_and_leaves_the_sliders(page, tmp_path):
    page.get_by_text("Copy an expression from a photo").click()
    page.locator("#reference-photo input[type=file]").set_input_files(blank_photo(tmp_path / "empty_wall.png"))
    page.get_by_text("No face was found in photo 1 (empty_wall.png)").first.wait_for(timeout=RENDER_MS)
    assert all(slider(page, label(au), "number input").input_value() == "0" for au in ACTION_UNITS)


def test_the_readout_of_a_result_appears_after_it_and_the_checkbox_hides_it(page):
    expect(page.locator("#readout")).to_be_visible(timeout=RENDER_MS)
    expect(page.locator("#readout-note")).to_contain_text("random stand-in")
    page.get_by_label("Measure each result: read its AUs back from the image").uncheck()
    expect(page.locator("#readout")).to_be_hidden(timeout=RENDER_MS)
