"""The FineFace LoRA is fused at the trained strength 0.25 (not diffusers' assumed 1.0)."""

import pytest
import torch
from safetensors.torch import load_file

from fineface_ui import FineFacePipeline
from fineface_ui.lora import TRAINED_LORA_SCALE, set_lora_scale

LAYER = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v"


@pytest.fixture(scope="module")
def lora_file(sd21_files):
    return load_file(sd21_files["fineface_weights"] / "pytorch_lora_weights.safetensors")


@pytest.fixture(scope="module")
def base_weight(sd21_files):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(sd21_files["base_model"], subfolder="unet")
    return unet.get_submodule(LAYER).weight.detach().clone()


def fused_weight(pipe):
    layer = pipe.sd.unet.get_submodule(LAYER)
    return getattr(layer, "base_layer", layer).weight.detach()


def delta(lora_file):
    return lora_file[f"unet.{LAYER}.lora_B.weight"] @ lora_file[f"unet.{LAYER}.lora_A.weight"]


def test_default_strength_is_the_trained_quarter(sd21_pipe, lora_file, base_weight):
    assert TRAINED_LORA_SCALE == 0.25 and sd21_pipe.lora_scale == 0.25
    torch.testing.assert_close(fused_weight(sd21_pipe) - base_weight, 0.25 * delta(lora_file), rtol=1e-4, atol=1e-6)


def test_changing_the_strength_refuses_exactly(sd21_files, lora_file, base_weight):
    pipe = FineFacePipeline.from_pretrained(**sd21_files, device="cpu", lora_scale=1.0)
    torch.testing.assert_close(fused_weight(pipe) - base_weight, delta(lora_file), rtol=1e-4, atol=1e-6)
    for scale in (0.5, 0.0, 0.25):
        set_lora_scale(pipe.sd.unet, scale)
        torch.testing.assert_close(fused_weight(pipe) - base_weight, scale * delta(lora_file), rtol=1e-4, atol=1e-5)


def test_a_request_with_another_lora_strength_refuses_the_weights(sd21_files, lora_file, base_weight):
    pipe = FineFacePipeline.from_pretrained(**sd21_files, device="cpu")
    pipe("a face", None, seed=1, lora_scale=0.0, num_inference_steps=1, height=256, width=256)
    assert pipe.lora_scale == 0.0
    torch.testing.assert_close(fused_weight(pipe), base_weight, rtol=0, atol=1e-6)
