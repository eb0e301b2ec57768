"""End-to-end behaviour of the text + AU pipeline on tiny random weights loaded from disk."""

import json

import numpy as np
import pytest
import torch

from fineface_ui.errors import InvalidInputError

from .conftest import FAST


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_same_seed_gives_identical_pixels(sd21_pipe):
    first = sd21_pipe("a close-up of a woman", {"AU12": 3}, seed=7, **FAST).images[0]
    second = sd21_pipe("a close-up of a woman", {"AU12": 3}, seed=7, **FAST).images[0]
    assert np.array_equal(pixels(first), pixels(second))


def test_different_seed_or_different_aus_change_the_image(sd21_pipe):
    base = pixels(sd21_pipe("a face", {"AU12": 3}, seed=7, **FAST).images[0])
    assert not np.array_equal(base, pixels(sd21_pipe("a face", {"AU12": 3}, seed=8, **FAST).images[0]))
    assert not np.array_equal(base, pixels(sd21_pipe("a face", {"AU4": 3}, seed=7, **FAST).images[0]))


def test_an_absent_au_equals_au_zero(sd21_pipe):
    absent = sd21_pipe("a face", {"AU12": 2}, seed=5, **FAST).images[0]
    explicit = sd21_pipe("a face", {"AU12": 2, "AU9": 0}, seed=5, **FAST).images[0]
    assert np.array_equal(pixels(absent), pixels(explicit))


def test_negative_and_exaggerated_values_run(sd21_pipe):
    out = sd21_pipe("a face", {"AU12": -4, "AU5": 9}, seed=1, **FAST)
    assert out.images[0].size == (256, 256)
    assert out.metadata["aus"][0]["AU12"] == -4


def test_au_scale_zero_removes_the_expression(sd21_pipe):
    smile = sd21_pipe("a face", {"AU12": 5}, seed=2, au_scale=0.0, **FAST).images[0]
    frown = sd21_pipe("a face", {"AU4": 5}, seed=2, au_scale=0.0, **FAST).images[0]
    assert np.array_equal(pixels(smile), pixels(frown))


def test_several_au_settings_in_one_call_share_the_seed(sd21_pipe):
    sweep = [{"AU12": value} for value in (0, 2.5, 5)]
    out = sd21_pipe("a face", sweep, seed=4, **FAST)
    assert len(out.images) == 3
    assert [item["AU12"] for item in out.metadata["aus"]] == [0, 2.5, 5]
    alone = sd21_pipe("a face", {"AU12": 2.5}, seed=4, **FAST).images[0]
    # Batched and single runs start from the same noise; only float summation order may differ.
    assert np.abs(pixels(out.images[1]) - pixels(alone)).max() <= 2
    assert out.metadata_for(2)["aus"] == [out.metadata["aus"][2]]


def test_moving_a_slider_does_not_rerun_the_text_encoder(sd21_pipe, monkeypatch):
    sd21_pipe("a portrait in the rain", {"AU12": 1}, seed=1, **FAST)
    calls = []
    original = sd21_pipe.sd.text_encoder.forward
    monkeypatch.setattr(sd21_pipe.sd.text_encoder, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    sd21_pipe("a portrait in the rain", {"AU12": 4}, seed=1, **FAST)
    assert calls == []
    sd21_pipe("another prompt entirely", {"AU12": 4}, seed=1, **FAST)
    assert len(calls) == 2  # prompt and negative prompt


def test_metadata_reproduces_the_image(sd21_pipe):
    from fineface_ui.settings import GenerationSettings

    out = sd21_pipe("a face", {"AU1": 2, "AU2": 2}, seed=11, negative_prompt="blurry", guidance_scale=5, **FAST)
    meta = out.metadata
    assert meta["pipeline"] == "sd21"
    # Local folders (the tiny models): their names and "local", never the server's paths.
    assert meta["models"] == {"FINEFACE_BASE_MODEL": {"repo": "sd21-base", "revision": "local"},
                              "FINEFACE_WEIGHTS": {"repo": "fineface", "revision": "local"}}
    assert "/tmp" not in json.dumps(meta)
    assert {"torch", "diffusers", "transformers", "peft"} <= set(meta["versions"])
    again = sd21_pipe.generate(GenerationSettings.from_metadata(meta)).images[0]
    assert np.array_equal(pixels(again), pixels(out.images[0]))


def test_progress_is_reported_and_an_exception_stops_the_run(sd21_pipe):
    steps = []
    sd21_pipe("a face", None, seed=1, on_step=lambda step, total: steps.append((step, total)), **FAST)
    assert steps == [(1, 2), (2, 2)]

    class Stop(Exception):
        pass

    def stop(step, total):
        raise Stop

    with pytest.raises(Stop):
        sd21_pipe("a face", None, seed=1, on_step=stop, **FAST)
    assert all(adapter._au_term is None for adapter in sd21_pipe.adapters.values())
    assert sd21_pipe("a face", None, seed=1, **FAST).images  # still usable


@pytest.mark.parametrize("options, message", [
    ({"seed": -1}, "seed"), ({"num_inference_steps": 0}, "steps"), ({"height": 300}, "multiple of 64"),
    ({"guidance_scale": float("nan")}, "guidance"), ({"scheduler": "euler"}, "scheduler"), ({"cfg": 3}, "Unknown"),
])
def test_bad_settings_get_a_clear_message(sd21_pipe, options, message):
    with pytest.raises(InvalidInputError, match=message):
        sd21_pipe("a face", None, **options)


def test_face_embeddings_need_the_identity_pipeline(sd21_pipe):
    with pytest.raises(InvalidInputError, match="FineFaceIdentityPipeline"):
        sd21_pipe("a face", None, face_embeds=torch.zeros(1, 512), **FAST)


def test_the_paper_scheduler_is_the_base_models_own(sd21_pipe):
    assert type(sd21_pipe.schedulers["paper"]).__name__ == "PNDMScheduler"
    assert sd21_pipe.schedulers["dpm++"].config.algorithm_type == "dpmsolver++"
    out = sd21_pipe("a face", None, seed=1, scheduler="paper", **FAST)
    assert out.metadata["scheduler"] == "paper"
