"""The FineFace LoRA is fused at the trained strength 0.25 (not diffusers' assumed 1.0), exactly."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fineface_ui import FineFacePipeline
from fineface_ui.engine.lora import TRAINED_LORA_SCALE

LAYER = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v"


@pytest.fixture(scope="module")
def lora_file(sd21_files):
    return load_file(sd21_files["fineface_weights"] / "pytorch_lora_weights.safetensors")


@pytest.fixture(scope="module")
def base_weight(sd21_files):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(sd21_files["base_model"], subfolder="unet")
    return unet.get_submodule(LAYER).weight.detach().clone()


def weight(pipe):
    return pipe.sd.unet.get_submodule(LAYER).weight.detach()


def delta(lora_file):
    return lora_file[f"unet.{LAYER}.lora_B.weight"] @ lora_file[f"unet.{LAYER}.lora_A.weight"]


def unet_weights(pipe):
    return {name: value.clone() for name, value in pipe.sd.unet.state_dict().items()}


def test_default_strength_is_the_trained_quarter(sd21_pipe, lora_file, base_weight):
    assert TRAINED_LORA_SCALE == 0.25 and sd21_pipe.lora.scale == 0.25 and sd21_pipe.lora.rank == 32
    torch.testing.assert_close(weight(sd21_pipe) - base_weight, 0.25 * delta(lora_file), rtol=1e-4, atol=1e-6)


def test_lora_touches_every_attention_projection_and_nothing_else(sd21_files):
    plain = FineFacePipeline.from_pretrained(**sd21_files, device="cpu", lora_scale=0.0)
    fused = FineFacePipeline.from_pretrained(**sd21_files, device="cpu")
    changed = {name for name, value in unet_weights(fused).items() if not torch.equal(value, unet_weights(plain)[name])}
    assert len(changed) == len(load_file(sd21_files["fineface_weights"] / "pytorch_lora_weights.safetensors")) // 2
    assert all(name.endswith(("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight")) for name in changed)


def test_changing_the_strength_and_back_gives_bit_identical_weights_and_pixels(sd21_files, fast):
    fresh = {scale: FineFacePipeline.from_pretrained(**sd21_files, device="cpu", lora_scale=scale) for scale in (0.25, 1.0)}
    pipe = FineFacePipeline.from_pretrained(**sd21_files, device="cpu")
    before = pipe("a face", {"AU12": 2}, seed=4, **fast).images[0]
    for scale in (1.0, 0.5, 0.0, 1.0):
        pipe.lora.set_scale(scale)
    assert all(torch.equal(v, unet_weights(fresh[1.0])[k]) for k, v in unet_weights(pipe).items())
    after = pipe("a face", {"AU12": 2}, seed=4, lora_scale=0.25, **fast)
    assert all(torch.equal(v, unet_weights(fresh[0.25])[k]) for k, v in unet_weights(pipe).items())
    assert np.array_equal(np.asarray(before), np.asarray(after.images[0]))
    assert after.metadata["lora_scale"] == 0.25


def test_a_request_without_a_strength_keeps_the_fused_one(sd21_files, fast):
    pipe = FineFacePipeline.from_pretrained(**sd21_files, device="cpu", lora_scale=0.5)
    out = pipe("a face", None, seed=1, **fast)
    assert pipe.lora.scale == 0.5 and out.metadata["lora_scale"] == 0.5


def test_fp16_pipeline_runs_and_fuses_once_in_fp32_from_the_loaded_weights(sd21_files, lora_file, base_weight, fast):
    pipe = FineFacePipeline.from_pretrained(**sd21_files, device="cpu", dtype=torch.float16)
    assert all(p.dtype == torch.float16 for p in pipe.au_encoder.parameters())
    assert all(a.au_to_v.weight.dtype == torch.float16 for a in pipe.adapters.values())
    # One rounding to fp16 after the fp32 sum, not one per fuse/unfuse.
    assert torch.equal(weight(pipe), (base_weight.half().float() + 0.25 * delta(lora_file)).half())
    out = pipe("a face", {"AU12": 3}, seed=2, **fast)
    assert np.isfinite(np.asarray(out.images[0], dtype=np.float32)).all() and out.metadata["dtype"] == "float16"


def held_bytes(value):
    """Bytes of every tensor reachable through dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return sum(held_bytes(item) for item in items)


def test_the_fused_lora_holds_only_the_original_weights_in_model_dtype_and_the_factors(sd21_files, tmp_path):
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    from fineface_ui.engine.lora import FusedLora, expected_lora_shapes, lora_targets

    unet = UNet2DConditionModel.from_pretrained(sd21_files["base_model"], subfolder="unet").half()
    # A low rank, as in the real model (32 against 320-1280 features): the factors are smaller than B @ A.
    factors = {key: torch.randn(shape) / 8 for key, shape in expected_lora_shapes(unet, rank=4).items()}
    save_file(factors, tmp_path / "lora.safetensors")
    originals = {path: linear.weight.detach().clone() for path, linear in lora_targets(unet).items()}
    lora = FusedLora(unet, tmp_path / "lora.safetensors", 0.25)
    at_quarter = {path: linear.weight.detach().clone() for path, linear in lora_targets(unet).items()}
    assert held_bytes(vars(lora)) <= held_bytes(originals) + held_bytes(factors)
    lora.set_scale(1.0)
    lora.set_scale(0.25)
    assert all(torch.equal(linear.weight, at_quarter[path]) for path, linear in lora_targets(unet).items())
    path = next(iter(originals))
    update = factors[f"unet.{path}.lora_B.weight"] @ factors[f"unet.{path}.lora_A.weight"]
    assert torch.equal(at_quarter[path], (originals[path].float() + 0.25 * update).half())
