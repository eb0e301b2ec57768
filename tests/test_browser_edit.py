"""The Edit a photo tab in a real headless Chromium, against the app with random weights: its detector takes a
bright rectangle for a face, and its tiny MagicFace edits in seconds."""

from __future__ import annotations

import numpy as np
from PIL import Image
from playwright.sync_api import expect

from fineface_ui.aus import ACTION_UNITS, AU_NAMES
from tests.app_fixtures import blank_photo, face_picture
from tests.browser_page import BROWSER_TESTS, RENDER_MS, block, fetch

pytest_plugins = ["tests.browser_page"]  # its fixtures: app_url, browser, page

pytestmark = BROWSER_TESTS

TWO_FACES = ((40, 60, 200, 240), (300, 100, 420, 240))  # the first is the larger
EDIT_SRC = "(document.querySelector('#edit-result img')?.src ?? null)"


def edit_slider(page, name: str, part: str = "range slider"):
    au = next(au for au in ACTION_UNITS if au.name == name)
    return page.locator(f"#edit-{name}").get_by_label(f"{part} for {au.name} · {au.facs_name}", exact=True)


def slider_values(page) -> dict[str, float]:
    return {name: float(edit_slider(page, name, "number input").input_value()) for name in AU_NAMES}


def drop_photo(page, photo, note: str) -> None:
    """Open the Edit a photo tab if needed, drop `photo` on it and wait for the note to say `note`."""
    tab = page.get_by_role("tab", name="Edit a photo")
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
    page.locator("#edit-photo input[type=file]").set_input_files(photo)
    expect(page.locator("#edit-note")).to_contain_text(note, timeout=RENDER_MS)


def wait_for_edit(page, caption: str) -> None:
    """Wait until the newest edit in the history has this caption, and the result shows it whole."""
    page.locator("#edit-history").get_by_text(caption, exact=True).first.wait_for(timeout=RENDER_MS)
    expect(page.locator("#edit-result [data-testid='block-label']")).to_have_text("Edited photo", timeout=RENDER_MS)


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_a_dropped_photo_sets_the_edit_sliders_to_the_values_read(page, random_studio, tmp_path):
    photo = face_picture(tmp_path / "portrait.png")
    read = random_studio.read_for_edit(photo).aus_read
    drop_photo(page, photo, "One face found in the photo (portrait.png)")
    expect(page.locator("#edit-note")).to_contain_text("non-commercial research")
    assert slider_values(page) == {name: round(read[name], 1) for name in AU_NAMES}


def test_releasing_a_slider_edits_the_photo_at_its_size_into_the_history_and_the_before_after(page, tmp_path):
    photo = face_picture(tmp_path / "portrait.png")
    drop_photo(page, photo, "One face found")
    before_drag = slider_values(page)["AU12"]
    au12 = edit_slider(page, "AU12")
    au12.scroll_into_view_if_needed()
    box = au12.bounding_box()
    x, y = box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2  # the range is -10..15: 5 is at 0.6
    page.mouse.move(x, y)
    page.mouse.down()
    for offset in range(10, 50, 10):
        page.mouse.move(x + offset, y)
    page.mouse.up()
    asked = slider_values(page)["AU12"]
    assert asked != before_drag
    wait_for_edit(page, f"AU12={asked:g} · seed 0")
    size = page.evaluate("(() => { const img = document.querySelector('#edit-result img');"
                         " return [img.naturalWidth, img.naturalHeight]; })()")
    assert size == [480, 400]  # the photo's size
    result = page.evaluate(EDIT_SRC)
    expect(page.locator("#edit-readout")).to_be_visible(timeout=RENDER_MS)

    page.get_by_role("tab", name="The photo ↔ the edit").click()
    compared = block(page, "The photo ↔ the edit").locator("img")
    expect(compared).to_have_count(2)
    before_url, after_url = (img.get_attribute("src") for img in compared.all())
    assert after_url == result
    assert np.array_equal(pixels(fetch(page, before_url, tmp_path / "before.png")), pixels(photo))
    assert not np.array_equal(pixels(fetch(page, after_url, tmp_path / "after.png")), pixels(photo))


def test_a_photo_without_a_face_is_explained_and_the_tab_still_edits_the_next_photo(page, tmp_path):
    drop_photo(page, blank_photo(tmp_path / "empty_wall.png"), "No face was found in the photo (empty_wall.png)")
    photo = face_picture(tmp_path / "portrait.png")
    drop_photo(page, photo, "One face found in the photo (portrait.png)")
    page.get_by_role("button", name="Edit", exact=True).click()
    wait_for_edit(page, "no change · seed 0")


def test_a_click_on_the_second_face_of_two_reads_that_face(page, random_studio, tmp_path):
    photo = face_picture(tmp_path / "two.png", size=(480, 360), boxes=TWO_FACES)
    largest, second = (random_studio.read_for_edit(photo, point).aus_read for point in (None, (360, 170)))
    shown = lambda read: {name: round(read[name], 1) for name in AU_NAMES}  # noqa: E731
    assert shown(largest) != shown(second)
    drop_photo(page, photo, "The largest of 2 faces")
    assert slider_values(page) == shown(largest)

    image = page.locator("#edit-photo img").first
    box = image.bounding_box()
    natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    scale = min(box["width"] / natural[0], box["height"] / natural[1])  # shown whole, centred
    left = box["x"] + (box["width"] - natural[0] * scale) / 2
    top = box["y"] + (box["height"] - natural[1] * scale) / 2
    page.mouse.click(left + 360 * scale, top + 170 * scale)
    expect(page.locator("#edit-note")).to_contain_text("The face you clicked, of 2 faces", timeout=RENDER_MS)
    assert slider_values(page) == shown(second)
