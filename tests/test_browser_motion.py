"""The Animate tab and the Upscale button in a real headless Chromium, against the app with random weights."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser_page import AU12, BROWSER_TESTS, RENDER_MS, RESULT_SRC, slider, wait_for_history

pytest_plugins = ["tests.browser_page"]  # its fixtures: app_url, browser, page

pytestmark = BROWSER_TESTS


def keyframes(page):
    return page.locator("#keyframes textarea")


def test_a_keyframed_motion_renders_frames_then_a_playable_video_and_three_downloads(page):
    page.get_by_role("tab", name="Animate").click()
    keyframes(page).fill("0:neutral; 0.5:AU12=4")
    expect(page.locator("#keyframes-read")).to_contain_text("0.5 s: AU12=4")
    page.get_by_role("button", name="Render animation").click()
    video = page.locator("#animation-video video")
    expect(video).to_have_attribute("src", re.compile(r"\.mp4$"), timeout=RENDER_MS)
    expect(page.locator("#animation-frames").get_by_text("Frames: 7 of 7")).to_be_visible()  # 0.5 s at 12 fps
    for suffix in (".mp4", ".gif", ".zip"):
        expect(page.locator("#animation-files").get_by_text(re.compile(rf"\{suffix}$"))).to_be_visible()
    duration = page.wait_for_function("() => document.querySelector('#animation-video video').duration || null",
                                      timeout=RENDER_MS).json_value()
    assert abs(duration - 7 / 12) < 0.05  # the browser decodes it: 7 frames of 1/12 s


def test_bad_keyframe_text_is_explained_as_it_is_typed_and_when_rendering(page):
    page.get_by_role("tab", name="Animate").click()
    keyframes(page).fill("0:neutral; 1:AU3=2")
    expect(page.locator("#keyframes-read")).to_contain_text("Unknown Action Unit 'AU3'")
    page.get_by_role("button", name="Render animation").click()
    expect(page.get_by_text("Unknown Action Unit 'AU3'").last).to_be_visible(timeout=RENDER_MS)


def test_the_sliders_become_a_keyframe_at_the_time_given(page):
    page.get_by_role("tab", name="Animate").click()
    slider(page, AU12, "number input").fill("2.5")
    page.get_by_label("Time (s)").fill("4")
    page.get_by_role("button", name="Add the sliders as a keyframe at this time").click()
    expect(keyframes(page)).to_have_value(re.compile(r"; 4:AU12=2\.5$"))


def test_upscale_puts_a_twice_as_large_image_first_in_the_history(page):
    page.get_by_role("button", name="Upscale", exact=True).click()
    wait_for_history(page, "neutral · seed 0 · x2")
    page.wait_for_function(f"{RESULT_SRC} !== null && document.querySelector('#result img').naturalWidth === 512",
                           timeout=RENDER_MS)  # the page opens with a 256 px image in demo mode


def test_a_quick_look_shows_the_motion_as_a_gif(page):
    page.get_by_role("tab", name="Animate").click()
    keyframes(page).fill("0:neutral; 0.5:AU12=4")
    page.get_by_role("button", name="Quick look").click()
    expect(page.locator("#motion-preview img")).to_have_attribute("src", re.compile(r"\.gif$"), timeout=RENDER_MS)
