"""The browser tests' fixtures and helpers: the app served with random weights, a Chromium page on it,
and the page's controls by their labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.app_fixtures import running_app

CHROMIUM = Path("/usr/bin/chromium")
# Every browser test module: `pytestmark = BROWSER_TESTS`.
BROWSER_TESTS = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium: apt-get install chromium"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RESULT_SRC = "(document.querySelector('#result img')?.src ?? null)"
# The result image's label: "Result", or what a preview or a render still forming says it is.
RESULT_LABEL = "(document.querySelector('#result [data-testid=\"block-label\"]')?.textContent.trim() ?? null)"
# How long a render may take to show up: under a second alone, far longer on a loaded machine.
RENDER_MS = 120_000


@pytest.fixture(scope="module")
def app_url(random_studio):
    with running_app(random_studio) as url:
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
    # The page's load event has run (it sets this flag): before that, values typed in were lost.
    page.wait_for_function("window.fineFacePointerDown === false")
    wait_for_first_image(page)
    yield page
    page.close()


def wait_for_first_image(page) -> None:
    """Wait for the image the page renders on opening (the default settings: 'neutral · seed 0')."""
    page.wait_for_function(f"{RESULT_SRC} !== null", timeout=RENDER_MS)
    wait_for_history(page, "neutral · seed 0")


def slider(page, label: str, part: str = "range slider"):
    """A Create tab's slider (the Edit a photo tab's AU sliders have the same labels)."""
    return page.locator("#create-tab").get_by_label(f"{part} for {label}", exact=True)


def render_and_wait(page, action) -> str:
    """Do `action`, then wait until the result image shows a new result (not a glimpse of it); return its URL."""
    before = page.evaluate(RESULT_SRC)
    action()
    page.wait_for_function(f"(before) => ![null, before].includes({RESULT_SRC}) && {RESULT_LABEL} === 'Result'",
                           arg=before, timeout=RENDER_MS)
    return page.evaluate(RESULT_SRC)


def wait_for_history(page, caption: str) -> None:
    """Wait until the newest history entry is the image with this caption ('AU12=0.3 · seed 0')."""
    page.locator("#history").get_by_text(caption, exact=True).first.wait_for(timeout=RENDER_MS)


AU6, AU12 = "AU6 · Cheek Raiser", "AU12 · Lip Corner Puller"


def prompt_box(page):
    return page.get_by_role("textbox", name=re.compile("^Prompt"))  # its name goes on with the info line


def block(page, label: str):
    """The component whose block label is exactly `label` (a gallery, an image, an image slider)."""
    block_label = page.get_by_test_id("block-label").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return page.locator(".block").filter(has=block_label)


def fetch(page, url: str, path: Path) -> Path:
    """Save a file the page shows (a result, a GIF) to `path`, as served."""
    path.write_bytes(page.request.get(url).body())
    return path


def download_png(page, folder: Path) -> Path:
    """Download the result into `folder`, under the name the page gives it."""
    with page.expect_download() as download:
        page.get_by_role("button", name="Download PNG (settings embedded)").click()
    path = folder / download.value.suggested_filename
    download.value.save_as(path)
    return path
