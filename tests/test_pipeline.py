"""End-to-end behaviour of the text + AU pipeline on tiny random weights loaded from disk."""

import json

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, PNDMScheduler

from fineface_ui import FineFacePipeline
from fineface_ui.errors import InvalidInputError


def test_same_seed_gives_identical_pixels(sd21_pipe, fast, pixels):
    first = sd21_pipe("a close-up of a woman", {"AU12": 3}, seed=7, **fast).images[0]
    second = sd21_pipe("a close-up of a woman", {"AU12": 3}, seed=7, **fast).images[0]
    assert np.array_equal(pixels(first), pixels(second))


def test_different_seed_or_different_aus_change_the_image(sd21_pipe, fast, pixels):
    base = pixels(sd21_pipe("a face", {"AU12": 3}, seed=7, **fast).images[0])
    assert not np.array_equal(base, pixels(sd21_pipe("a face", {"AU12": 3}, seed=8, **fast).images[0]))
    assert not np.array_equal(base, pixels(sd21_pipe("a face", {"AU4": 3}, seed=7, **fast).images[0]))


def test_an_absent_au_equals_au_zero(sd21_pipe, fast, pixels):
    absent = sd21_pipe("a face", {"AU12": 2}, seed=5, **fast).images[0]
    explicit = sd21_pipe("a face", {"AU12": 2, "AU9": 0}, seed=5, **fast).images[0]
    assert np.array_equal(pixels(absent), pixels(explicit))


def test_negative_and_exaggerated_values_act_beyond_the_trained_range(sd21_pipe, fast, pixels):
    outputs = {value: sd21_pipe("a face", {"AU12": value}, seed=1, **fast) for value in (-4, 0, 4, 5, 9)}
    images = {value: pixels(out.images[0]) for value, out in outputs.items()}
    # Not clamped to [0, 5]: a negative value is not "absent", and 9 is more than 5.
    assert not np.array_equal(images[-4], images[0]) and not np.array_equal(images[-4], images[4])
    assert not np.array_equal(images[9], images[5])
    assert outputs[-4].metadata["aus"][0]["AU12"] == -4


def test_au_scale_zero_removes_the_expression(sd21_pipe, fast, pixels):
    smile = sd21_pipe("a face", {"AU12": 5}, seed=2, au_scale=0.0, **fast).images[0]
    frown = sd21_pipe("a face", {"AU4": 5}, seed=2, au_scale=0.0, **fast).images[0]
    assert np.array_equal(pixels(smile), pixels(frown))


def test_several_au_settings_in_one_call_share_the_seed(sd21_pipe, fast, pixels):
    sweep = [{"AU12": value} for value in (0, 2.5, 5)]
    out = sd21_pipe("a face", sweep, seed=4, **fast)
    assert len(out.images) == 3
    assert [item["AU12"] for item in out.metadata["aus"]] == [0, 2.5, 5]
    alone = sd21_pipe("a face", {"AU12": 2.5}, seed=4, **fast).images[0]
    # Batched and single runs start from the same noise; only float summation order may differ.
    assert np.abs(pixels(out.images[1]) - pixels(alone)).max() <= 2
    assert out.metadata_for(2)["aus"] == [out.metadata["aus"][2]]


def count_text_encoder_calls(pipe, monkeypatch):
    calls = []
    original = pipe.sd.text_encoder.forward
    monkeypatch.setattr(pipe.sd.text_encoder, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def test_moving_a_slider_does_not_rerun_the_text_encoder(sd21_pipe, monkeypatch, fast):
    sd21_pipe("a portrait in the rain", {"AU12": 1}, seed=1, **fast)
    calls = count_text_encoder_calls(sd21_pipe, monkeypatch)
    sd21_pipe("a portrait in the rain", {"AU12": 4}, seed=1, **fast)
    assert calls == []
    sd21_pipe("another prompt entirely", {"AU12": 4}, seed=1, **fast)
    assert len(calls) == 2  # prompt and negative prompt


def test_a_new_negative_prompt_alone_is_encoded_and_the_same_pair_is_a_cache_hit(sd21_pipe, monkeypatch, fast, pixels):
    calls = count_text_encoder_calls(sd21_pipe, monkeypatch)
    blurry = sd21_pipe("a portrait by a window", {"AU12": 2}, seed=3, negative_prompt="blurry", **fast)
    assert len(calls) == 2
    cartoon = sd21_pipe("a portrait by a window", {"AU12": 2}, seed=3, negative_prompt="cartoon", **fast)
    assert len(calls) == 4  # the cached embedding of the prompt with "blurry" is not reused for "cartoon"
    assert not np.array_equal(pixels(blurry.images[0]), pixels(cartoon.images[0]))
    again = sd21_pipe("a portrait by a window", {"AU12": 2}, seed=3, negative_prompt="blurry", **fast)
    assert len(calls) == 4
    assert np.array_equal(pixels(again.images[0]), pixels(blurry.images[0]))


def test_metadata_reproduces_the_image(sd21_pipe, fast, pixels):
    from fineface_ui.settings import GenerationSettings

    out = sd21_pipe("a face", {"AU1": 2, "AU2": 2}, seed=11, negative_prompt="blurry", guidance_scale=5, **fast)
    meta = out.metadata
    assert meta["pipeline"] == "sd21"
    # Local folders (the tiny models): their names and "local", never the server's paths.
    assert meta["models"] == {"FINEFACE_BASE_MODEL": {"repo": "sd21-base", "revision": "local"},
                              "FINEFACE_WEIGHTS": {"repo": "fineface", "revision": "local"},
                              "FINEFACE_PREVIEW_DECODER": {"repo": "taesd", "revision": "local"}}
    assert "/tmp" not in json.dumps(meta)
    assert {"torch", "diffusers", "transformers", "peft"} <= set(meta["versions"])
    again = sd21_pipe.generate(GenerationSettings.from_metadata(meta)).images[0]
    assert np.array_equal(pixels(again), pixels(out.images[0]))


def test_progress_is_reported_and_an_exception_stops_the_run(sd21_pipe, fast):
    steps = []
    sd21_pipe("a face", None, seed=1, on_step=lambda step, total: steps.append((step, total)), **fast)
    assert steps == [(1, 2), (2, 2)]

    class Stop(Exception):
        pass

    def stop(step, total):
        raise Stop

    with pytest.raises(Stop):
        sd21_pipe("a face", None, seed=1, on_step=stop, **fast)
    assert all(adapter._au_term is None for adapter in sd21_pipe.adapters.values())
    assert sd21_pipe("a face", None, seed=1, **fast).images  # still usable


@pytest.mark.parametrize("options, message", [
    ({"seed": -1}, "seed"), ({"num_inference_steps": 0}, "steps"), ({"height": 300}, "multiple of 64"),
    ({"guidance_scale": float("nan")}, "guidance"), ({"scheduler": "euler"}, "scheduler"), ({"cfg": 3}, "Unknown"),
])
def test_bad_settings_get_a_clear_message(sd21_pipe, options, message):
    with pytest.raises(InvalidInputError, match=f"(?i){message}"):  # names the setting, label or field
        sd21_pipe("a face", None, **options)


def test_face_embeddings_need_a_variant_with_the_identity_adapter(sd21_pipe, fast):
    assert sd21_pipe.identity is None
    with pytest.raises(InvalidInputError, match=r"sd21 pipeline has no identity adapter.*variant='sd15-identity'"):
        sd21_pipe("a face", None, face_embeds=torch.zeros(1, 512), **fast)


def test_a_source_the_variant_does_not_load_is_a_clear_error(sd21_files, sd15_files):
    with pytest.raises(ValueError, match="The sd21 variant loads no ip_adapter_weights, vae"):
        FineFacePipeline.from_pretrained(**sd21_files, ip_adapter_weights=sd15_files["ip_adapter_weights"],
                                         vae=sd15_files["vae"], device="cpu")
    with pytest.raises(ValueError, match="Unknown variant 'sd3'"):
        FineFacePipeline.from_pretrained(**sd21_files, variant="sd3", device="cpu")


@pytest.fixture
def scheduler_steps(monkeypatch):
    """The scheduler instances whose step() ran, in order."""
    stepped = []
    for scheduler_class in (PNDMScheduler, DPMSolverMultistepScheduler):
        def step(self, *args, _original=scheduler_class.step, **kwargs):
            stepped.append(self)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(scheduler_class, "step", step)
    return stepped


def test_the_scheduler_setting_decides_which_sampler_runs(sd21_pipe, scheduler_steps, fast, pixels):
    paper = sd21_pipe("a face", None, seed=1, scheduler="paper", **fast)
    # 'paper' is the base model's own scheduler (PNDM in the SD 2.1-base repo).
    assert scheduler_steps and {type(s).__name__ for s in scheduler_steps} == {"PNDMScheduler"}
    scheduler_steps.clear()
    dpm = sd21_pipe("a face", None, seed=1, scheduler="dpm++", **fast)
    assert scheduler_steps and {type(s).__name__ for s in scheduler_steps} == {"DPMSolverMultistepScheduler"}
    assert scheduler_steps[0].config.algorithm_type == "dpmsolver++"
    assert not np.array_equal(pixels(paper.images[0]), pixels(dpm.images[0]))
    assert (paper.metadata["scheduler"], dpm.metadata["scheduler"]) == ("paper", "dpm++")


def unet_batch_sizes(pipe):
    """Batch sizes the UNet sees, recorded by a forward hook; remove the returned handle afterwards."""
    sizes = []
    handle = pipe.sd.unet.register_forward_hook(lambda module, args, output: sizes.append(args[0].shape[0]))
    return sizes, handle


def test_a_sweep_longer_than_a_batch_runs_in_batches_with_the_same_pixels(sd21_pipe, fast, pixels, monkeypatch):
    sweep = [{"AU12": value} for value in (0, 1, 2, 3, 4)]
    whole = sd21_pipe("a face", sweep, seed=6, **fast)
    monkeypatch.setattr(sd21_pipe, "images_per_batch", 2, raising=False)
    sizes, handle = unet_batch_sizes(sd21_pipe)
    steps = []
    try:
        batched = sd21_pipe("a face", sweep, seed=6, on_step=lambda step, total: steps.append((step, total)), **fast)
    finally:
        handle.remove()
    assert max(sizes) == 4  # two images, each with its unguided twin
    assert len(batched.images) == 5 and batched.metadata["aus"] == whole.metadata["aus"]
    # Each image has its own seeded generator: only float summation order may differ between batch sizes.
    assert all(np.abs(pixels(a) - pixels(b)).max() <= 2 for a, b in zip(batched.images, whole.images))
    assert steps == [(step, 6) for step in range(1, 7)]  # one progress bar over the three loops


def test_to_casts_every_component_even_when_the_unet_already_has_the_dtype(sd21_files):
    pipe = FineFacePipeline.from_pretrained(**sd21_files, device="cpu")
    pipe.sd.unet.half()  # the case where a check of the UNet alone skipped casting the rest
    pipe.to("cpu", torch.float16)
    modules = {name: part for name, part in pipe.sd.components.items() if isinstance(part, torch.nn.Module)}
    modules.update({"au_encoder": pipe.au_encoder, "preview_decoder": pipe.preview_decoder, **pipe.adapters})
    assert {name: {p.dtype for p in module.parameters()} for name, module in modules.items()} == {
        name: {torch.float16} for name in modules}
    assert pipe.dtype == torch.float16


def test_text_longer_than_clip_reads_is_recorded_with_the_count_cut(sd21_pipe, fast):
    long_prompt = "a close-up photo of a smiling woman in a park " * 12
    seen = len(sd21_pipe.sd.tokenizer(long_prompt).input_ids)
    out = sd21_pipe(long_prompt, None, negative_prompt="blurry", seed=1, **fast)
    assert out.metadata["tokens_dropped"] == {"prompt": seen - 77, "negative_prompt": 0} and seen > 77
    assert "tokens_dropped" not in sd21_pipe("a face", None, seed=1, **fast).metadata
