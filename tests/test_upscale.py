"""Upscaling a result ("hires fix"): larger, redrawn by an image-to-image pass with the same conditioning."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from fineface_ui.cli import main
from fineface_ui.errors import InvalidInputError
from fineface_ui.png_info import read_settings
from fineface_ui.settings import GenerationSettings, Upscale
from fineface_ui.web import handlers
from fineface_ui.web.before_after import show_before_after
from fineface_ui.web.rendering import Backend
from fineface_ui.web.session import Session
from fineface_ui.web.zero_gpu import estimated_seconds


def no_progress(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def made(sd21_pipe):
    """A tiny render and the settings it was made with (8 steps, so an upscale at 0.5 runs 4)."""
    settings = GenerationSettings.create("a face", "AU12=3", seed=3, num_inference_steps=8, height=256, width=256)
    return sd21_pipe.generate(settings).images[0], settings


def as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_an_upscale_doubles_each_side_and_records_how_in_the_metadata(sd21_pipe, made):
    image, settings = made
    output = sd21_pipe.upscale(image, settings, upscale=Upscale.create(strength=0.5))
    assert output.images[0].size == (512, 512)
    assert output.metadata["upscale"] == {"scale": 2.0, "strength": 0.5, "width": 512, "height": 512}
    stored = GenerationSettings.from_metadata(output.metadata)
    assert (stored.prompt, stored.aus, stored.seed, stored.width) == (settings.prompt, settings.aus, 3, 256)


def test_the_same_upscale_gives_the_same_pixels(sd21_pipe, made):
    image, settings = made
    first, again = (sd21_pipe.upscale(image, settings, upscale=Upscale.create(strength=0.5)).images[0]
                    for _ in range(2))
    assert np.array_equal(as_array(first), as_array(again))


def test_the_aus_condition_the_redraw(sd21_pipe, made):
    image, settings = made
    other = GenerationSettings.create("a face", "AU4=5", seed=3, num_inference_steps=8, height=256, width=256)
    asked = sd21_pipe.upscale(image, settings, upscale=Upscale.create(strength=0.5)).images[0]
    frown = sd21_pipe.upscale(image, other, upscale=Upscale.create(strength=0.5)).images[0]
    assert np.abs(as_array(asked) - as_array(frown)).mean() > 1


def test_a_higher_strength_moves_further_from_the_enlarged_source(sd21_pipe, made):
    image, settings = made
    enlarged = as_array(image.resize((512, 512), Image.Resampling.LANCZOS))
    distance = {strength: np.abs(as_array(sd21_pipe.upscale(image, settings, upscale=Upscale.create(
        strength=strength)).images[0]) - enlarged).mean() for strength in (0.15, 1.0)}
    assert distance[0.15] < distance[1.0]


def test_factors_keep_the_shape_rounding_each_side_to_a_multiple_of_8():
    assert Upscale.create(scale=1.5).size(512, 320) == (768, 480)
    assert Upscale.create(scale=1.25).size(448, 256) == (560, 320)


def test_an_image_of_another_size_than_its_settings_is_refused(sd21_pipe, made):
    image, settings = made
    with pytest.raises(InvalidInputError, match="The image is 512x512, but its settings make 256x256 images"):
        sd21_pipe.upscale(image.resize((512, 512)), settings)


@pytest.mark.parametrize(("values", "message"), [
    ({"scale": 4}, "Upscale factor must be between 1.25 and 2, got 4"),
    ({"strength": 0}, "Upscale strength must be between 0.05 and 1, got 0"),
    ({"strength": "0.4"}, "Upscale strength must be a number"),
    ({"factor": 2}, "Unknown upscale setting"),
])
def test_bad_upscale_values_are_refused_naming_the_range(values, message):
    with pytest.raises(InvalidInputError, match=message):
        Upscale.create(**values)
    if "factor" not in values:  # made directly, as Python users may, the values are checked too
        with pytest.raises(InvalidInputError, match=message):
            Upscale(**values)


def test_a_strength_that_runs_no_step_is_refused_before_any_work(sd21_pipe, made):
    image, settings = made
    with pytest.raises(InvalidInputError, match="runs no denoising step"):
        sd21_pipe.upscale(image, settings, upscale=Upscale.create(strength=0.1))  # 8 steps x 0.1 -> none


def test_an_upscale_asks_zero_gpu_for_the_time_of_the_larger_image():
    settings = GenerationSettings.create("a face", None, num_inference_steps=50)
    plain = estimated_seconds(None, settings)
    upscaled = estimated_seconds(None, settings, "image.png", [], None, upscale=Upscale.create(strength=0.4))
    assert upscaled > plain  # 4 times the pixels for 0.4 of the steps


def page_values(fast, **changes):
    return {**{name: setting.default for name, setting in handlers.SPEC.items()},
            **{name: 0.0 for name in handlers.AU_NAMES}, "prompt": "a face", **fast, "num_inference_steps": 4,
            **changes}


def test_the_page_upscales_the_result_shown_and_puts_it_first_in_the_history(random_studio, fast):
    backend, state = Backend(random_studio), Session()
    for au12 in (2.0, 3.0):
        list(handlers.render(backend, state, None, True, False, no_progress, **page_values(fast, AU12=au12, seed=4)))
    older = state.history[1]
    state.shown = older  # clicked in the history (restoring.restore_from_history)
    image, history, download, metadata = handlers.upscale_result(backend, state, 2.0, 0.5, no_progress)
    assert state.history[2] is older and state.shown is state.history[0]
    assert Image.open(image["value"]).size == (512, 512)
    assert metadata["upscale"]["scale"] == 2.0 and read_settings(image["value"])["aus"][0]["AU12"] == 2.0
    assert history["value"][0][1] == "AU12=2 · seed 4 · x2"
    with pytest.raises(Exception, match="upscaled already"):
        handlers.upscale_result(backend, state, 2.0, 0.5, no_progress)
    # The same settings again (a number box losing focus): the upscaled image stays, nothing renders.
    again = list(handlers.render(backend, state, None, True, False, no_progress, **page_values(fast, AU12=2.0, seed=4)))
    assert again == [(image, *[gr.skip()] * 5)] and len(state.history) == 3
    assert show_before_after(backend, state, no_progress) is None  # no twin at another size


def test_the_page_refuses_an_upscale_that_runs_no_step_before_the_gpu_slot(random_studio, fast):
    backend, state = Backend(random_studio), Session()
    list(handlers.render(backend, state, None, True, False, no_progress, **page_values(fast, num_inference_steps=2)))
    with pytest.raises(gr.Error, match="runs no denoising step"):
        handlers.upscale_result(backend, state, 2.0, 0.4, no_progress)


def test_the_page_says_to_render_first_when_there_is_nothing_to_upscale(random_studio):
    with pytest.raises(Exception, match="Render an image first"):
        handlers.upscale_result(Backend(random_studio), Session(), 2.0, 0.4, no_progress)


def test_generate_refuses_an_upscale_that_runs_no_step_before_any_model_loads(tmp_path, capsys, no_model_loads):
    assert main(["generate", "--steps", "2", "--upscale", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert "Upscale strength 0.4 of 2 steps runs no denoising step" in capsys.readouterr().err


def test_generate_with_upscale_writes_the_larger_image_with_both_settings(sd21_files, tmp_path):
    out = tmp_path / "big.png"
    assert main(["generate", "--base-model", str(sd21_files["base_model"]), "--fineface-weights",
                 str(sd21_files["fineface_weights"]), "--device", "cpu", "--steps", "4", "--height", "256",
                 "--width", "256", "--au", "AU12=3", "--upscale", "1.5", "--out", str(out)]) == 0
    assert Image.open(out).size == (384, 384)
    stored = read_settings(out)
    assert stored["width"] == 256 and stored["upscale"] == {"scale": 1.5, "strength": 0.4, "width": 384,
                                                            "height": 384}
    assert "Hires upscale: 1.5, Denoising strength: 0.4" in Image.open(out).info["parameters"]
