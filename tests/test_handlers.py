"""The page's handlers, called directly: no browser, the random-weight Studio."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from fineface_ui.png_info import read_settings, save_png
from fineface_ui.settings import SPEC, GenerationSettings
from fineface_ui.web import handlers, restoring
from fineface_ui.web.before_after import show_before_after
from fineface_ui.web.handlers import PAGE_VALUES, image_key
from fineface_ui.web.rendering import Backend, generate_readably, stream_readably
from fineface_ui.web.session import Session


def no_progress(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def backend(random_studio):
    return Backend(random_studio)


def render(*args, **values):
    """handlers.render to its end: the outputs it yields last (the result), its image as the file shown."""
    *_, (image, *others) = handlers.render(*args, **values)
    return (image["value"], *others)


def page(fast, **changes):
    """The page's values by name, as the controls hold them by default."""
    values = {name: setting.default for name, setting in SPEC.items()}
    values.update({name: 0.0 for name in PAGE_VALUES[1 + len(SPEC):]}, prompt="a face", **fast)
    return {**values, **changes}


def test_with_keep_seed_off_every_render_gets_a_new_seed_and_shows_it(backend, fast):
    state = Session()
    seeds = []
    for _ in range(3):
        image, _, _, _, seed, metadata = render(backend, state, None, False, False, no_progress,
                                                         **page(fast, seed=5))
        assert metadata["seed"] == seed
        seeds.append(seed)
    assert len(set(seeds)) == 3 and 5 not in seeds
    assert len(state.history) == 3


def test_with_keep_seed_on_the_same_settings_again_render_nothing(backend, fast):
    state = Session()
    first = render(backend, state, None, True, False, no_progress, **page(fast, seed=5, AU12=2.0))
    assert first[4] == 5
    again = render(backend, state, None, True, False, no_progress, **page(fast, seed=5, AU12=2.0))
    assert again == (first[0], *[gr.skip()] * 5) and len(state.history) == 1  # the image shown, no render
    changed = render(backend, state, None, True, False, no_progress, **page(fast, seed=5, AU12=3.0))
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
    with pytest.warns(UserWarning, match="made with a face photo: add the face again"):
        *values, keep_seed, preset = restoring.restore_from_png(str(path))
    restored = dict(zip(PAGE_VALUES, values))
    assert restored["lora_scale"] == gr.skip()
    assert (restored["ip_scale"], restored["seed"], restored["AU12"], restored["scheduler"]) == (0.8, 9, 3.0, "paper")
    assert keep_seed is True
    assert preset is None  # the restored sliders are no preset's


def test_a_png_without_settings_leaves_every_control_as_it_was_and_says_why(tmp_path):
    path = tmp_path / "holiday.png"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.warns(UserWarning, match="holiday.png has no FineFace settings"):
        outputs = restoring.restore_from_png(str(path))
    assert outputs == [gr.skip()] * (len(PAGE_VALUES) + 2)


def test_the_download_is_named_by_the_seed_and_the_aus_in_use(backend, fast):
    image, _, _, download, _, _ = render(backend, Session(), None, True, False, no_progress,
                                         **page(fast, seed=7, AU6=2.5, AU12=4.0))
    path = Path(download["value"])
    assert path.name == "fineface-seed7-AU6_2.5-AU12_4.png"
    assert path.read_bytes() == Path(image).read_bytes()


def test_a_preset_sets_all_twelve_aus_and_an_unknown_one_changes_nothing():
    happiness = handlers.apply_preset("Happiness")
    assert len(happiness) == 12 and happiness[handlers.AU_NAMES.index("AU12")] == 4.0
    assert handlers.apply_preset("no such preset") == [gr.skip()] * 12


def test_the_before_image_is_rendered_only_when_the_before_after_view_asks_for_it(random_studio, fast):
    batches = []

    def generate(studio, settings, photos, on_step):
        batches.append(len(settings.aus))
        return generate_readably(studio, settings, photos, on_step)

    def streamed(studio, settings, photos, on_step):
        batches.append(len(settings.aus))
        yield from stream_readably(studio, settings, photos, on_step)

    backend, state = Backend(random_studio, generate=generate, streamed=streamed), Session()
    image, compare, *_ = render(backend, state, None, True, False, no_progress, **page(fast, AU12=2.0))
    assert batches == [1] and compare is None  # the view is not shown: no twin
    before, after = show_before_after(backend, state, no_progress)  # the view opens: the twin now
    assert batches == [1, 1] and after == image and not any(read_settings(before)["aus"][0].values())
    assert show_before_after(backend, state, no_progress) == (before, after) and batches == [1, 1]

    image, compare, *_ = render(backend, state, None, True, True, no_progress, **page(fast, AU12=3.0))
    assert batches == [1, 1, 1] and compare == (before, image)  # only an AU changed: the same twin
    image, compare, *_ = render(backend, state, None, True, True, no_progress, **page(fast, seed=8, AU12=3.0))
    assert batches[-1] == 2 and compare[1] == image  # a new seed, with the view shown: one batch of two


def clicked_in_history(result, index):
    """The event of a click on a history thumbnail, as the page sends it: the page's index, and the
    shown file, Gradio's cached copy of the result."""
    return gr.SelectData(None, {"index": index, "value": {"image": {"path": f"/cache/0f3a/{result.path.name}"},
                                                          "caption": handlers.caption(result.metadata)}})


def test_a_history_click_restores_the_image_clicked_even_after_a_render_shifted_the_gallery(backend, fast):
    state = Session()
    render(backend, state, None, True, False, no_progress, **page(fast, AU12=2.0))
    clicked = state.history[0]
    render(backend, state, None, True, False, no_progress, **page(fast, AU12=4.0))  # ends before the click
    # The page sends the index it showed (0, now the newer image) and Gradio's cached copy of the file.
    restored = restoring.restore_from_history(state, clicked_in_history(clicked, index=0))
    assert dict(zip(PAGE_VALUES, restored))["AU12"] == 2.0 and restored[-1] == clicked.metadata



def test_a_history_click_puts_the_face_photos_of_that_image_back(backend, fast, tmp_path):
    state = Session()
    render(backend, state, None, True, False, no_progress, **page(fast, AU12=2.0))
    photo = tmp_path / "me.png"
    Image.new("RGB", (8, 8)).save(photo)
    state.history[0].key = (state.history[0].key[0], (str(photo),))  # as if made with this photo
    photos_at = len(PAGE_VALUES) + 2
    assert restoring.restore_from_history(state, clicked_in_history(state.history[0], 0))[photos_at] == [str(photo)]
    photo.unlink()
    with pytest.warns(UserWarning, match="add the face again"):
        assert restoring.restore_from_history(state, clicked_in_history(state.history[0], 0))[photos_at] == gr.skip()


def test_an_uploaded_photo_moves_into_the_tab_and_leaves_with_it(backend, tmp_path):
    from tests.app_fixtures import blank_photo

    upload = blank_photo(tmp_path / "wall.png")  # stands for the file in Gradio's upload cache
    state = Session()
    _, note = handlers.show_faces(backend, state, [str(upload)], no_progress)
    assert "No face found" in note and "wall.png" in note  # the copy keeps the photo's name
    copy = state.photos[str(upload)]
    assert copy.is_file() and not upload.exists()
    backend.outputs.close(state)
    assert not copy.exists() and not state.folder.exists()


def test_a_prompt_longer_than_clip_reads_gets_a_warning_naming_the_count(backend, fast):
    long_prompt = "a close-up photo of a smiling woman in a park " * 12
    with pytest.warns(UserWarning, match=r"The prompt is \d+ token\(s\) longer than CLIP reads"):
        render(backend, Session(), None, True, False, no_progress, **page(fast, prompt=long_prompt))


def test_random_weight_images_name_no_server_folder(backend, fast):
    image, *_, metadata = render(backend, Session(), None, True, False, no_progress, **page(fast, seed=3))
    with Image.open(image) as png:
        stored = " ".join(str(value) for value in png.info.values())
    for text in (json.dumps(metadata), stored):
        assert "/tmp" not in text and str(backend.outputs.root) not in text
    assert metadata["models"]["FINEFACE_BASE_MODEL"] == {"repo": "sd21-base", "revision": "local"}
