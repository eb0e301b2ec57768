"""Live in a real browser: previews while an AU slider is dragged, a render forming before its
result, and Stop while it forms."""

from __future__ import annotations

import time

from fineface_ui.web.handlers import PREVIEW_LABEL
from tests.browser_page import AU12, BROWSER_TESTS, RENDER_MS, RESULT_LABEL, RESULT_SRC, slider, wait_for_history

pytest_plugins = ["tests.browser_page"]  # its fixtures: app_url, browser, page

pytestmark = BROWSER_TESTS

SHOWN = f"[{RESULT_SRC}, {RESULT_LABEL}]"
# Records every picture the result image shows, with its label, as the page changes it.
WATCH_RESULT_JS = f"""() => {{
  window.shownResults = [];
  const note = () => {{
    const [src, label] = {SHOWN};
    const last = window.shownResults.at(-1);
    if (!last || last[0] !== src || last[1] !== label) window.shownResults.push([src, label]);
  }};
  new MutationObserver(note).observe(document.querySelector('#result'),
                                     {{subtree: true, childList: true, attributes: true, characterData: true}});
}}"""


def history_captions(page) -> list[str]:
    return page.locator("#history .caption-label").all_inner_texts()


def slowed_steps(monkeypatch, pipe, seconds: float) -> dict:
    """Make every denoising step of `pipe` last at least `seconds`, so the page can be watched between them;
    returns the steps each run did."""
    generate, runs = pipe.generate, []

    def slow_generate(settings, on_step=None, face_embeds=None, on_preview=None):
        run = {"steps": settings.num_inference_steps, "done": 0}
        runs.append(run)

        def step(done, total):
            time.sleep(seconds)
            run["done"] = done
            on_step(done, total)
        return generate(settings, step, face_embeds, on_preview)

    monkeypatch.setattr(pipe, "generate", slow_generate)
    return runs


def test_dragging_an_au_slider_previews_it_and_the_release_renders_the_final_value(page):
    captions_before = history_captions(page)
    au12 = slider(page, AU12)
    au12.scroll_into_view_if_needed()
    box = au12.bounding_box()
    x, y = box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2  # the range is -10..15: 0 at 40%
    page.mouse.move(x, y)
    page.mouse.down()
    previews = []
    for offset in (20, 40, 60):
        page.mouse.move(x + offset, y)
        page.wait_for_function(f"(seen) => {RESULT_LABEL} === {PREVIEW_LABEL!r} && !seen.includes({RESULT_SRC})",
                               arg=previews, timeout=RENDER_MS)
        previews.append(page.evaluate(RESULT_SRC))
    assert len(previews) >= 2  # shown while the button is still held down
    page.mouse.up()
    value = float(slider(page, AU12, "number input").input_value())
    wait_for_history(page, f"AU12={value:g} · seed 0")
    page.wait_for_function(f"{RESULT_LABEL} === 'Result'", timeout=RENDER_MS)
    page.wait_for_timeout(500)  # a stale preview arriving after the result would show by now
    assert page.evaluate(SHOWN) == [page.evaluate(RESULT_SRC), "Result"]
    assert page.evaluate(RESULT_SRC) not in previews
    assert history_captions(page) == [f"AU12={value:g} · seed 0", *captions_before]  # no preview among them


def test_a_render_shows_its_image_forming_before_the_result(page, random_studio, monkeypatch):
    slowed_steps(monkeypatch, random_studio.text_pipeline(), 0.3)
    page.evaluate(WATCH_RESULT_JS)
    page.get_by_label("Seed", exact=True).fill("5")
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_history(page, "neutral · seed 5")
    page.wait_for_function(f"{RESULT_LABEL} === 'Result'", timeout=RENDER_MS)
    first_label = {}  # each picture shown, in order, with the label it came with (a label may change first)
    for src, label in page.evaluate("window.shownResults"):
        first_label.setdefault(src, label)
    previous, *pictures = first_label
    assert None not in first_label  # the previous image stayed until the first glimpse replaced it
    # The page renders 4 steps: a glimpse after each of the first three, then the result.
    assert [first_label[src] for src in pictures] == [
        "Forming: step 1 of 4", "Forming: step 2 of 4", "Forming: step 3 of 4", "Result"]


def test_stop_while_a_render_forms_ends_it_and_brings_back_the_last_result(page, random_studio, monkeypatch):
    runs = slowed_steps(monkeypatch, random_studio.text_pipeline(), 0.5)
    result_before, captions_before = page.evaluate(RESULT_SRC), history_captions(page)
    page.get_by_label("Seed", exact=True).fill("6")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_function(f"{RESULT_LABEL}?.startsWith('Forming')", timeout=RENDER_MS)
    page.get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_function(f"{RESULT_LABEL} === 'Result'", timeout=RENDER_MS)
    assert page.evaluate(RESULT_SRC) == result_before
    lock = random_studio.text_pipeline()._lock
    assert lock.acquire(timeout=30), "the run did not end"  # at its next step
    lock.release()
    assert runs[-1]["done"] < runs[-1]["steps"]
    page.wait_for_timeout(1000)
    assert history_captions(page) == captions_before and page.evaluate(RESULT_SRC) == result_before
