"""Live previews: the quick image of a slider drag and the glimpses of a render as it forms."""

from __future__ import annotations

import threading

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from fineface_ui.engine.previews import PREVIEW_STEPS, glimpse_steps, preview_settings
from fineface_ui.settings import SPEC, GenerationSettings
from fineface_ui.studio import StudioResult
from fineface_ui.web import handlers
from fineface_ui.web.rendering import Backend, Glimpse, StepReporter, stream_readably
from fineface_ui.web.session import Session


def no_progress(*args, **kwargs):
    pass


def page(fast, **changes):
    values = {name: setting.default for name, setting in SPEC.items()}
    return {**values, **dict.fromkeys(handlers.AU_NAMES, 0.0), "prompt": "a face", **fast, **changes}


@pytest.fixture
def starting_noise(sd21_pipe, monkeypatch):
    """The latents each denoising loop of sd21_pipe starts from, in order."""
    seen = []
    prepare = sd21_pipe.sd.prepare_latents

    def recorded(*args, **kwargs):
        latents = prepare(*args, **kwargs)
        seen.append(latents.clone())
        return latents

    monkeypatch.setattr(sd21_pipe.sd, "prepare_latents", recorded)
    return seen


def test_a_preview_keeps_every_setting_but_the_steps_and_the_scheduler():
    full = GenerationSettings.create("a face", {"AU12": 3.5, "AU6": -1}, seed=11, num_inference_steps=40,
                                     guidance_scale=5, au_scale=1.5, width=320, height=384, scheduler="paper",
                                     negative_prompt="blur")
    quick = preview_settings(full)
    assert (quick.num_inference_steps, quick.scheduler) == (PREVIEW_STEPS, "dpm++")
    assert quick.as_dict() == {**full.as_dict(), "num_inference_steps": PREVIEW_STEPS, "scheduler": "dpm++"}
    assert preview_settings(GenerationSettings.create("a face", None, num_inference_steps=3)).num_inference_steps == 3


def test_a_preview_starts_from_the_full_renders_noise_and_is_decoded_by_taesd(sd21_pipe, starting_noise, fast,
                                                                              monkeypatch):
    decoded = {"vae": 0, "taesd": 0}
    for name, model in (("vae", sd21_pipe.sd.vae), ("taesd", sd21_pipe.preview_decoder)):
        decode = model.decode
        monkeypatch.setattr(model, "decode", lambda *a, _d=decode, _n=name, **k: decoded.__setitem__(
            _n, decoded[_n] + 1) or _d(*a, **k))
    settings = GenerationSettings.create("a face", {"AU12": 3}, seed=4, **fast)
    full = sd21_pipe.generate(settings).images[0]
    assert decoded == {"vae": 1, "taesd": 0}
    quick = sd21_pipe.generate_preview(settings)
    assert decoded == {"vae": 1, "taesd": 1}
    assert len(quick) == 1 and quick[0].size == full.size
    assert starting_noise[0].equal(starting_noise[1])
    assert sd21_pipe.preview("a face", {"AU12": 3}, seed=4, **fast)[0].tobytes() == quick[0].tobytes()


def test_the_preview_follows_the_au_values(sd21_pipe, fast):
    smile, frown = (sd21_pipe.preview("a face", {"AU12": value}, seed=4, **fast)[0] for value in (5.0, -5.0))
    assert smile.tobytes() != frown.tobytes()


def test_glimpses_come_at_evenly_spaced_steps_and_leave_the_image_unchanged(sd21_pipe):
    settings = GenerationSettings.create("a face", {"AU12": 2}, seed=5, num_inference_steps=10, width=256, height=256)
    glimpses = []
    watched = sd21_pipe("a face", {"AU12": 2}, seed=5, num_inference_steps=10, width=256, height=256,
                        on_preview=lambda images, step, total: glimpses.append((step, total, images)))
    assert [(step, total) for step, total, _ in glimpses] == [(2, 10), (4, 10), (6, 10), (8, 10)]
    assert all(len(images) == 1 and images[0].size == (256, 256) for _, _, images in glimpses)
    assert glimpses[0][2][0].tobytes() != glimpses[-1][2][0].tobytes()  # the picture forms
    assert watched.images[0].tobytes() == sd21_pipe.generate(settings).images[0].tobytes()


@pytest.mark.parametrize("steps, shown", [(1, set()), (4, {1, 2, 3}), (25, {5, 10, 15, 20}), (50, {10, 20, 30, 40})])
def test_glimpse_steps_never_include_the_last_step(steps, shown):
    assert glimpse_steps(steps) == shown


def test_a_stream_yields_glimpses_then_the_result(random_studio):
    settings = GenerationSettings.create("a face", {"AU12": 1}, num_inference_steps=6, width=256, height=256)
    arrivals = list(stream_readably(random_studio, settings, [], StepReporter(no_progress, None)))
    assert [type(arrival) for arrival in arrivals] == [Glimpse] * 5 + [StudioResult]
    assert [arrival.step for arrival in arrivals[:-1]] == [1, 2, 3, 4, 5]


def test_a_stream_left_early_ends_its_run_at_the_next_step(random_studio):
    settings = GenerationSettings.create("a face", {"AU12": 1}, num_inference_steps=20, width=256, height=256)
    steps_run, left = [], threading.Event()

    def progress(done_total, desc):
        steps_run.append(done_total[0])
        if done_total[0] == 5:  # the step under way when the consumer leaves, however fast the machine
            left.wait(30)

    stream = stream_readably(random_studio, settings, [], StepReporter(progress, None))
    assert next(stream).step == 4  # the first glimpse
    stream.close()  # as when Gradio cancels the event (Stop) or the tab closes
    left.set()
    lock = random_studio.text_pipeline()._lock
    assert lock.acquire(timeout=30), "the run did not end"
    lock.release()
    assert steps_run in ([1, 2, 3, 4], [1, 2, 3, 4, 5])  # of 20: it stopped at the step after it was left


def test_the_page_shows_a_render_forming_then_the_result(random_studio, fast):
    backend, state = Backend(random_studio), Session()
    outputs = list(handlers.render(backend, state, None, True, False, no_progress,
                                   **page(fast, num_inference_steps=6, AU12=2.0)))
    *forming, final = outputs
    assert [update["label"] for update, *_ in forming] == [f"Forming: step {step} of 6" for step in range(1, 6)]
    assert all(isinstance(update["value"], Image.Image) and rest == [gr.skip()] * 5 for update, *rest in forming)
    assert final[0] == handlers.shown_image(state.history[0].path) and final[0]["label"] == handlers.RESULT_LABEL


def test_a_preview_is_marked_and_never_becomes_a_result(random_studio, fast):
    backend, state = Backend(random_studio), Session()
    shown = handlers.preview(backend, state, None, **page(fast, AU12=3.0))
    assert shown["label"] == handlers.PREVIEW_LABEL
    assert isinstance(shown["value"], Image.Image) and not shown["value"].info  # no settings to save
    # The tab's folder is marked as in use; nothing is written into it.
    assert state.history == [] and [path for path in backend.outputs.root.rglob("*") if path.is_file()] == []


def test_a_preview_of_values_whose_render_was_asked_for_is_dropped(random_studio, fast):
    backend, state = Backend(random_studio), Session()
    values = page(fast, AU12=3.0)
    list(handlers.render(backend, state, None, False, False, no_progress, **values))  # Keep seed off: a new seed
    assert handlers.preview(backend, state, None, **values) == gr.skip()  # arrived after the release's render
    assert handlers.preview(backend, state, None, **{**values, "AU12": 3.1})["label"] == handlers.PREVIEW_LABEL


def test_a_preview_of_bad_values_shows_nothing_and_leaves_the_message_to_the_render(random_studio, fast):
    backend = Backend(random_studio)
    assert handlers.preview(backend, Session(), None, **page(fast, AU12=float("nan"))) == gr.skip()
    with pytest.raises(gr.Error, match="AU12"):
        list(handlers.render(backend, Session(), None, True, False, no_progress, **page(fast, AU12=float("nan"))))


def test_successive_previews_of_a_drag_differ_and_share_the_seed(random_studio, fast):
    backend, state = Backend(random_studio), Session()
    frames = [handlers.preview(backend, state, None, **page(fast, seed=9, AU12=value))["value"]
              for value in (1.0, 1.0, 4.0)]
    pixels = [np.asarray(frame) for frame in frames]
    assert np.array_equal(pixels[0], pixels[1]) and not np.array_equal(pixels[0], pixels[2])
    assert state.history == []
