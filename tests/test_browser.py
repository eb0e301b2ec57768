"""The page in a real headless Chromium (Debian's), against the app served with random weights."""

from __future__ import annotations

import re
import shutil
import threading

import numpy as np
from PIL import Image, ImageSequence
from playwright.sync_api import expect

from fineface_ui.png_info import A1111_KEY, read_settings
from tests.browser_page import (
    AU6,
    AU12,
    BROWSER_TESTS,
    RENDER_MS,
    RESULT_SRC,
    block,
    download_png,
    fetch,
    prompt_box,
    render_and_wait,
    slider,
    wait_for_first_image,
    wait_for_history,
)

pytest_plugins = ["tests.browser_page"]  # its fixtures: app_url, browser, page

pytestmark = BROWSER_TESTS


def test_keyboard_and_drag_on_a_slider_rerender_the_image_once(page, tmp_path):
    page.get_by_text("Demo mode with random weights").wait_for()
    first = page.evaluate(RESULT_SRC)  # the page opened with an image (the same render as Generate's)
    render_fn = page.requests_sent[0]  # the render the page opened with

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
    preset = page.get_by_label("Preset")
    expect(preset).to_have_value("Happiness")
    slider(page, "AU6 · Cheek Raiser", "number input").fill("2")  # the sliders are no longer the preset's
    expect(preset).to_have_value("")


def test_enter_in_the_prompt_renders_and_shift_enter_adds_a_line(page, tmp_path):
    prompt_box(page).fill("a calm face")
    prompt_box(page).press("Shift+Enter")
    prompt_box(page).press_sequentially("in the rain")
    expect(prompt_box(page)).to_have_value("a calm face\nin the rain")
    shown = render_and_wait(page, lambda: prompt_box(page).press("Enter"))
    assert read_settings(fetch(page, shown, tmp_path / "shown.png"))["prompt"] == "a calm face\nin the rain"


def test_enter_in_a_number_box_renders_and_a_value_beyond_the_range_becomes_the_nearest_end(page):
    box = slider(page, AU12, "number input")
    box.fill("16")  # the AU sliders end at 15
    box.press("Enter")
    wait_for_history(page, "AU12=15 · seed 0")
    expect(box).to_have_value("15")
    expect(page.get_by_text("greater than maximum")).to_have_count(0)  # no error toast


def test_on_a_phone_the_result_stays_in_view_while_an_au_slider_is_edited(browser, app_url):
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.goto(app_url)
    phone.wait_for_function("window.fineFacePointerDown === false")
    wait_for_first_image(phone)
    jaw_drop = slider(phone, "AU26 · Jaw Drop", "number input")
    jaw_drop.scroll_into_view_if_needed()
    jaw_drop.fill("2")
    jaw_drop.press("Enter")
    wait_for_history(phone, "AU26=2 · seed 0")
    result, edited = phone.locator("#result img").bounding_box(), jaw_drop.bounding_box()
    pinned = phone.locator("#output-column").bounding_box()
    assert 0 <= result["y"] and result["y"] + result["height"] <= 844
    assert pinned["y"] + pinned["height"] <= edited["y"] <= 844  # the slider is not under the pinned result
    phone.screenshot(path="/tmp/fineface-phone.png")
    phone.close()


def test_the_page_opens_with_an_image_of_the_default_settings(browser, app_url):
    visitor = browser.new_page(viewport={"width": 1400, "height": 1100})
    visitor.goto(app_url)
    wait_for_first_image(visitor)
    visitor.close()


def test_stop_ends_the_running_render_after_its_current_step_and_the_next_render_follows(page, random_studio,
                                                                                        monkeypatch):
    pipe = random_studio.text_pipeline()
    runs = []
    first_render_started, stop_answered, first_render_ended = threading.Event(), threading.Event(), threading.Event()
    generate = pipe.generate

    def first_render_held_in_its_first_step(settings, on_step=None, face_embeds=None, on_preview=None):
        run = {"steps": settings.num_inference_steps, "done": 0}
        runs.append(run)
        first = len(runs) == 1

        def step(done, total):
            run["done"] = done
            if first and done == 1:  # the Stop arrives while this step is under way, however slow the machine
                first_render_started.set()
                stop_answered.wait(RENDER_MS / 1000)
            on_step(done, total)
        try:
            return generate(settings, step, face_embeds, on_preview)
        finally:
            if first:
                first_render_ended.set()

    monkeypatch.setattr(pipe, "generate", first_render_held_in_its_first_step)
    page.get_by_label("Seed", exact=True).fill("1")  # not the settings of the image the page opened with
    generate_button = page.get_by_role("button", name="Generate", exact=True)
    generate_button.click()
    try:
        assert first_render_started.wait(RENDER_MS / 1000), "the render never started"
        # Gradio cancels whatever runs for the render event, not one run: a render asked for before
        # this cancel is answered, or before the first render has ended, would be cancelled with it.
        with page.expect_response(lambda response: "/gradio_api/cancel" in response.url):
            # Stop bypasses the queue: its answer comes once the server has taken it.
            with page.expect_response(lambda response: "/run/predict" in response.url):
                page.get_by_role("button", name="Stop", exact=True).click()
            stop_answered.set()
    finally:
        stop_answered.set()
    assert first_render_ended.wait(RENDER_MS / 1000), "Stop did not end the render"
    # The random-weights page renders 4 steps: the stopped render ran none after the Stop.
    assert runs == [{"steps": 4, "done": 1}]
    render_and_wait(page, generate_button.click)
    assert runs[1:] == [{"steps": 4, "done": 4}]


def test_a_history_thumbnail_restores_its_image_settings_and_download(page, tmp_path):
    page.get_by_label("Seed", exact=True).fill("7")
    prompt_box(page).fill("a laughing child")
    slider(page, AU12, "number input").fill("2")
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_history(page, "AU12=2 · seed 7")
    first = page.evaluate(RESULT_SRC)

    prompt_box(page).fill("an old man")
    page.get_by_label("Keep seed").uncheck()
    page.get_by_role("button", name="Reset all AUs").click()  # renders with AUs at 0 and a new seed
    thumbnails = page.locator("#history").get_by_role("button", name=re.compile("^Thumbnail"))
    expect(thumbnails).to_have_count(3, timeout=RENDER_MS)  # with the image the page opened with
    assert page.evaluate(RESULT_SRC) != first
    renders = len(page.requests_sent)  # the reset's settings go without the queue; the last request is a render

    page.locator("#history").get_by_alt_text("AU12=2 · seed 7").click()
    expect(slider(page, AU12, "number input")).to_have_value("2")
    expect(page.get_by_label("Seed", exact=True)).to_have_value("7")
    expect(prompt_box(page)).to_have_value("a laughing child")
    expect(page.get_by_label("Keep seed")).to_be_checked()  # else the next render would not reproduce it
    assert page.evaluate(RESULT_SRC) == first
    stored = read_settings(download_png(page, tmp_path))
    assert (stored["prompt"], stored["seed"], stored["aus"][0]["AU12"]) == ("a laughing child", 7, 2.0)
    render_fn = page.requests_sent[renders - 1]
    assert page.requests_sent[renders:].count(render_fn) == 0  # restoring shows the image, renders nothing


def test_the_history_highlights_the_image_shown_after_a_click_and_after_a_new_render(page):
    page.get_by_label("Seed", exact=True).fill("3")
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_history(page, "neutral · seed 3")
    thumbnails = page.locator("#history .thumbnail-item")
    thumbnails.nth(1).click()  # the image the page opened with
    expect(thumbnails.nth(1)).to_have_class(re.compile(r"\bselected\b"))
    page.get_by_label("Seed", exact=True).fill("4")
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_history(page, "neutral · seed 4")
    expect(thumbnails.nth(0)).to_have_class(re.compile(r"\bselected\b"))  # the new image, shown
    expect(page.locator("#history .thumbnail-item.selected")).to_have_count(1)


def test_history_captions_show_whole(page):
    page.get_by_label("Seed", exact=True).fill("123456")
    slider(page, AU6, "number input").fill("1.5")
    slider(page, AU12, "number input").fill("2.5")
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_history(page, "AU6=1.5, AU12=2.5 · seed 123456")
    cut = page.locator("#history .caption-label").evaluate_all(
        "(captions) => captions.filter((c) => c.scrollWidth > c.clientWidth).map((c) => c.textContent)")
    assert cut == []


def test_the_downloaded_png_carries_the_settings_and_loading_it_restores_them(page, tmp_path):
    page.get_by_label("Seed", exact=True).fill("42")
    prompt_box(page).fill("a smiling man with a beard")
    page.get_by_label("Negative prompt", exact=True).fill("blurry")
    slider(page, AU6, "number input").fill("1.5")
    slider(page, AU12, "number input").fill("2.5")
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_history(page, "AU6=1.5, AU12=2.5 · seed 42")

    png = download_png(page, tmp_path)
    assert png.name == "fineface-seed42-AU6_1.5-AU12_2.5.png"
    stored = read_settings(png)
    assert stored["prompt"] == "a smiling man with a beard" and stored["negative_prompt"] == "blurry"
    assert stored["seed"] == 42 and stored["num_inference_steps"] == 4
    assert {au: value for au, value in stored["aus"][0].items() if value} == {"AU6": 1.5, "AU12": 2.5}
    with Image.open(png) as image:
        parameters = image.info[A1111_KEY]
    assert parameters.splitlines()[:2] == ["a smiling man with a beard", "Negative prompt: blurry"]
    assert "Steps: 4," in parameters and "Seed: 42," in parameters and 'AUs: "AU6=1.5, AU12=2.5"' in parameters

    page.get_by_label("Seed", exact=True).fill("3")
    prompt_box(page).fill("someone else")
    page.get_by_label("Negative prompt", exact=True).fill("")
    page.get_by_role("button", name="Reset all AUs").click()
    wait_for_history(page, "neutral · seed 3")

    page.get_by_text("Load settings from a PNG").click()
    block(page, "A PNG saved by FineFace UI").locator("input[type=file]").set_input_files(png)
    expect(slider(page, AU12, "number input")).to_have_value("2.5")
    expect(slider(page, AU6, "number input")).to_have_value("1.5")
    expect(page.get_by_label("Seed", exact=True)).to_have_value("42")
    expect(prompt_box(page)).to_have_value("a smiling man with a beard")
    expect(page.get_by_label("Negative prompt", exact=True)).to_have_value("blurry")


def test_a_sweep_shows_every_frame_and_an_animation_that_plays_forward_then_back(page, tmp_path):
    # The tab's own settings (AU12 from 0 to 5 in 6 frames): a value typed into the just-opened tab
    # was now and then reset to its default while the tab mounted.
    page.get_by_role("tab", name="Sweep").click()
    # The download button is the Image tab's: the sweep's frames are not what it downloads.
    expect(page.get_by_role("button", name="Download PNG (settings embedded)")).to_be_hidden()
    page.get_by_role("button", name="Run sweep").click()

    frames = block(page, "Frames (click one to set the sliders to it)").locator("img")
    expect(frames).to_have_count(6, timeout=RENDER_MS)
    assert [frame.get_attribute("alt") for frame in frames.all()] == [f"AU12={value}" for value in range(6)]
    last = read_settings(fetch(page, frames.nth(5).get_attribute("src"), tmp_path / "last.png"))
    assert last["aus"][0]["AU12"] == 5.0

    animation = block(page, "Animation").locator("img")
    expect(animation).to_have_attribute("src", re.compile(r"\.gif$"), timeout=RENDER_MS)
    with Image.open(fetch(page, animation.get_attribute("src"), tmp_path / "sweep.gif")) as gif:
        assert gif.info["loop"] == 0  # endless
        loop = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(gif)]
    assert len(loop) == 10  # frames 0 to 5, then 4 to 1 on the way back
    assert all(np.array_equal(loop[10 - k], loop[k]) for k in range(1, 5))
    assert not np.array_equal(loop[5], loop[0])

    frames.nth(3).click()  # sets the sliders to that frame and renders it
    expect(slider(page, AU12, "number input")).to_have_value("3")
    wait_for_history(page, "AU12=3 · seed 0")


def test_before_after_slides_from_the_all_aus_zero_image_to_the_current_one(page, tmp_path, pixels):
    page.get_by_label("Seed", exact=True).fill("5")
    slider(page, AU12, "number input").fill("3")
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_history(page, "AU12=3 · seed 5")
    page.get_by_role("tab", name="Before / after").click()
    compared = block(page, "All AUs at 0 ↔ current AUs").locator("img")
    expect(compared).to_have_count(2)
    before_url, after_url = (img.get_attribute("src") for img in compared.all())
    assert after_url == page.evaluate(RESULT_SRC)
    before = fetch(page, before_url, tmp_path / "before.png")
    after = fetch(page, after_url, tmp_path / "after.png")
    before_settings = read_settings(before)
    assert not any(before_settings["aus"][0].values())
    assert (before_settings["seed"], before_settings["prompt"]) == (5, prompt_box(page).input_value())
    assert not np.array_equal(pixels(before), pixels(after))

    slider(page, AU12).focus()
    page.keyboard.press("ArrowRight")  # only an AU changes: the same "before" image stays
    wait_for_history(page, "AU12=3.1 · seed 5")
    expect(compared.nth(1)).to_have_attribute("src", page.evaluate(RESULT_SRC))
    assert compared.nth(0).get_attribute("src") == before_url
