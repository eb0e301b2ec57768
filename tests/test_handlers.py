"""The page's handlers, called directly: no browser, the random-weight Studio."""

from __future__ import annotations

import gradio as gr
import pytest
from PIL import Image

from fineface_ui import handlers
from fineface_ui.handlers import PAGE_VALUES, image_key
from fineface_ui.png_info import save_png
from fineface_ui.rendering import Backend
from fineface_ui.session import Session
from fineface_ui.settings import SPEC, GenerationSettings


def no_progress(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def backend(random_studio):
    return Backend(random_studio)


def page(fast, **changes):
    """The page's values by name, as the controls hold them by default."""
    values = {name: setting.default for name, setting in SPEC.items()}
    values.update({name: 0.0 for name in PAGE_VALUES[1 + len(SPEC):]}, prompt="a face", **fast)
    return {**values, **changes}


def test_with_keep_seed_off_every_render_gets_a_new_seed_and_shows_it(backend, fast):
    state = Session()
    seeds = []
    for _ in range(3):
        image, _, _, _, seed, metadata = handlers.render(backend, state, None, False, no_progress, **page(fast, seed=5))
        assert metadata["seed"] == seed
        seeds.append(seed)
    assert len(set(seeds)) == 3 and 5 not in seeds
    assert len(state.history) == 3


def test_with_keep_seed_on_the_same_settings_again_render_nothing(backend, fast):
    state = Session()
    first = handlers.render(backend, state, None, True, no_progress, **page(fast, seed=5, AU12=2.0))
    assert first[4] == 5
    assert handlers.render(backend, state, None, True, no_progress, **page(fast, seed=5, AU12=2.0)) == gr.skip()
    changed = handlers.render(backend, state, None, True, no_progress, **page(fast, seed=5, AU12=3.0))
    assert changed[5]["aus"][0]["AU12"] == 3.0 and len(state.history) == 2


def test_a_setting_the_pipeline_ignores_does_not_count_as_a_change():
    settings = GenerationSettings.create("a face", {"AU12": 2})
    stronger_lora = GenerationSettings.create("a face", {"AU12": 2}, lora_scale=0.8)
    stronger_identity = GenerationSettings.create("a face", {"AU12": 2}, ip_scale=0.5)
    assert image_key(settings, ["me.png"]) == image_key(stronger_lora, ["me.png"])  # the face pipeline has no LoRA
    assert image_key(settings, []) != image_key(stronger_lora, [])
    assert image_key(settings, []) == image_key(stronger_identity, [])  # no photo, no identity
    assert image_key(settings, ["me.png"]) != image_key(stronger_identity, ["me.png"])


def test_the_photos_show_the_settings_of_the_pipeline_they_select():
    names = [setting.name for setting in handlers.PIPELINE_SETTINGS]
    assert sorted(names) == ["ip_scale", "lora_scale"]
    with_photo = dict(zip(names, handlers.pipeline_controls(["me.png"])))
    without = dict(zip(names, handlers.pipeline_controls(None)))
    assert with_photo["ip_scale"]["visible"] and not with_photo["lora_scale"]["visible"]
    assert without["lora_scale"]["visible"] and not without["ip_scale"]["visible"]


def test_a_sweep_renders_one_captioned_frame_per_step_and_a_gif(backend, fast):
    state = Session()
    gallery, gif = handlers.render_sweep(backend, state, None, "au12", 0, 3, 4, no_progress, **page(fast))
    assert [text for _, text in gallery] == ["AU12=0", "AU12=1", "AU12=2", "AU12=3"]
    assert gif.endswith(".gif") and len(state.sweep_files) == 5


@pytest.mark.parametrize("frames", [1, 33, 2.5, float("nan"), "8"])
def test_a_sweep_refuses_a_frame_count_outside_2_to_32(backend, fast, frames):
    with pytest.raises(gr.Error, match="frames must be a whole number from 2 to 32"):
        handlers.render_sweep(backend, Session(), None, "AU12", 0, 3, frames, no_progress, **page(fast))


def test_restoring_a_face_image_keeps_the_lora_control_that_model_does_not_use(tmp_path):
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "face.png", {
        "prompt": "a portrait", "aus": [{"AU12": 3}], "seed": 9, "num_inference_steps": 25,
        "guidance_scale": 7.5, "au_scale": 1.0, "negative_prompt": "", "height": 512, "width": 512,
        "scheduler": "paper", "ip_scale": 0.8, "lora_scale": None, "pipeline": "sd15-identity", "faces": 1})
    *values, keep_seed = handlers.restore_from_png(str(path))
    restored = dict(zip(PAGE_VALUES, values))
    assert restored["lora_scale"] == gr.skip()
    assert (restored["ip_scale"], restored["seed"], restored["AU12"], restored["scheduler"]) == (0.8, 9, 3.0, "paper")
    assert keep_seed is True


def test_a_preset_sets_all_twelve_aus_and_an_unknown_one_changes_nothing():
    happiness = handlers.apply_preset("Happiness")
    assert len(happiness) == 12 and happiness[handlers.AU_NAMES.index("AU12")] == 4.0
    assert handlers.apply_preset("no such preset") == [gr.skip()] * 12
