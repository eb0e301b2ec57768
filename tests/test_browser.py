"""The page in a real headless Chromium (Debian's), against the app served with random weights."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.app_fixtures import blank_photo, random_studio, running_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RESULT_SRC = "document.querySelector('#result img')?.src ?? null"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium: apt-get install chromium"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with running_app(random_studio(tmp_path_factory)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.requests_sent = []
    page.on("request", lambda request: "queue/join" in request.url and page.requests_sent.append(
        json.loads(request.post_data)["fn_index"]))
    page.goto(app_url)
    page.get_by_role("button", name="Generate", exact=True).wait_for()
    yield page
    page.close()


def slider(page, label: str, part: str = "range slider"):
    return page.get_by_label(f"{part} for {label}", exact=True)


def render_and_wait(page, action) -> str:
    """Do `action`, then wait until the result image shows a new picture; return its URL."""
    before = page.evaluate(RESULT_SRC)
    action()
    page.wait_for_function(f"(before) => ![null, before].includes({RESULT_SRC})", arg=before, timeout=20_000)
    return page.evaluate(RESULT_SRC)


def wait_for_history(page, caption: str) -> None:
    """Wait until the newest history entry is the image with this caption ('AU12=0.3 · seed 0')."""
    page.locator("#history").get_by_text(caption, exact=True).first.wait_for(timeout=20_000)


def test_keyboard_and_drag_on_a_slider_rerender_the_image_once(page, tmp_path):
    page.get_by_text("Demo mode with random weights").wait_for()
    first = render_and_wait(page, page.get_by_role("button", name="Generate", exact=True).click)
    wait_for_history(page, "neutral · seed 0")
    render_fn = page.requests_sent[-1]

    slider(page, "AU12 · Lip Corner Puller").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    wait_for_history(page, "AU12=0.3 · seed 0")  # renders on the way are allowed, the last one counts
    assert slider(page, "AU12 · Lip Corner Puller", "number input").input_value() == "0.3"
    assert page.evaluate(RESULT_SRC) != first

    renders_before_drag = page.requests_sent.count(render_fn)
    au1_range = slider(page, "AU1 · Inner Brow Raiser")
    au1_range.scroll_into_view_if_needed()
    box = au1_range.bounding_box()
    zero_x, y = box["x"] + box["width"] / 3, box["y"] + box["height"] / 2  # the range is -5..10
    page.mouse.move(zero_x, y)
    page.mouse.down()
    for offset in range(10, 110, 10):
        page.mouse.move(zero_x + offset, y)
    page.mouse.up()
    au1 = float(slider(page, "AU1 · Inner Brow Raiser", "number input").input_value())
    assert au1 > 0
    wait_for_history(page, f"AU1={au1:g}, AU12=0.3 · seed 0")
    page.wait_for_timeout(300)  # a stray render from the drag ticks would have been sent by now
    assert page.requests_sent.count(render_fn) == renders_before_drag + 1

    page.screenshot(path=tmp_path / "fineface.png", full_page=True)
    shutil.copy(tmp_path / "fineface.png", "/tmp/fineface-screenshot.png")


def test_a_preset_moves_the_sliders_and_renders(page):
    def pick_happiness():
        page.get_by_label("Preset").click()
        page.get_by_role("option", name="Happiness", exact=True).click()

    render_and_wait(page, pick_happiness)
    assert slider(page, "AU6 · Cheek Raiser", "number input").input_value() == "3"
    assert slider(page, "AU12 · Lip Corner Puller", "number input").input_value() == "4"
    assert slider(page, "AU4 · Brow Lowerer", "number input").input_value() == "0"


def test_a_photo_without_a_face_says_so(page, tmp_path):
    page.get_by_text("Face photos (optional)").click()
    page.locator("#face-photos input[type=file]").set_input_files(blank_photo(tmp_path / "empty_wall.png"))
    page.locator("#face-note").get_by_text("No face found").wait_for(timeout=20_000)
    assert "empty_wall.png" in page.locator("#face-note").inner_text()


def test_stop_interrupts_a_long_render_and_the_next_render_follows_at_once(page):
    page.get_by_text("Advanced").click()
    for label in ("Width", "Height"):
        slider(page, label, "number input").fill("512")
        slider(page, label, "number input").press("Tab")  # losing focus releases: a quick 4-step render
    steps = slider(page, "Steps", "number input")
    steps.fill("100")
    with page.expect_request(lambda request: "queue/join" in request.url and ",100," in request.post_data):
        steps.press("Tab")  # sent once the quick renders are done: 100 steps at 512 px take many seconds
    page.wait_for_timeout(1000)  # now it runs
    page.get_by_role("button", name="Stop", exact=True).click()
    stopped = time.monotonic()
    steps.fill("2")
    render_and_wait(page, lambda: steps.press("Tab"))
    # Had the 100-step run gone on, this render would have waited for it to finish.
    assert time.monotonic() - stopped < 6
