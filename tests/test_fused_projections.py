"""Fused Q/K/V projections: the same images as the separate projections, with the AUs and the LoRA's
strength still reaching every layer."""

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import FusedAttnProcessor2_0

from fineface_ui import FineFacePipeline
from fineface_ui.engine.acceleration import Acceleration
from fineface_ui.engine.attention import FineFaceAttnProcessor, attention_layers

FUSED = Acceleration(fused_projections=True)


@pytest.fixture(scope="module")
def fused_pipe(sd21_files):
    return FineFacePipeline.from_pretrained(**sd21_files, device="cpu", acceleration=FUSED)


def test_every_layer_runs_one_product_for_its_projections_and_keeps_its_processor(fused_pipe):
    layers = attention_layers(fused_pipe.sd.unet)
    processors = fused_pipe.sd.unet.attn_processors
    for name, layer in layers.items():
        assert layer.fused_projections
        if layer.is_cross_attention:
            assert processors[name] is fused_pipe.adapters[name] and isinstance(processors[name], FineFaceAttnProcessor)
        else:
            assert isinstance(processors[name], FusedAttnProcessor2_0)


@pytest.mark.parametrize("aus", [{"AU12": 5}, {"AU4": -3, "AU26": 8}])
def test_fused_projections_give_the_separate_projections_images(fused_pipe, sd21_pipe, fast, pixels, aus):
    fused = fused_pipe("a face", aus, seed=5, **fast).images[0]
    separate = sd21_pipe("a face", aus, seed=5, **fast).images[0]
    assert np.abs(pixels(fused) - pixels(separate)).max() <= 1


def test_a_new_lora_strength_reaches_the_fused_weights_where_they_are(fused_pipe, sd21_pipe, fast, pixels):
    layer = next(iter(attention_layers(fused_pipe.sd.unet).values()))
    address = layer.to_qkv.weight.data_ptr()  # a captured CUDA graph reads the weights there
    try:
        fused_pipe.lora.set_scale(1.0)
        assert layer.to_qkv.weight.data_ptr() == address
        torch.testing.assert_close(layer.to_qkv.weight, torch.cat([layer.to_q.weight, layer.to_k.weight,
                                                                   layer.to_v.weight]), rtol=0, atol=0)
        fused = fused_pipe("a face", {"AU12": 2}, seed=6, **fast).images[0]
    finally:
        fused_pipe.lora.set_scale(0.25)
    separate = sd21_pipe("a face", {"AU12": 2}, seed=6, lora_scale=1.0, **fast)
    sd21_pipe.lora.set_scale(0.25)
    assert np.abs(pixels(fused) - pixels(separate.images[0])).max() <= 1
    assert not np.array_equal(pixels(fused), pixels(fused_pipe("a face", {"AU12": 2}, seed=6, **fast).images[0]))


def test_the_fused_product_is_what_runs_not_the_separate_projections_beside_it(fused_pipe, fast, pixels):
    before = fused_pipe("a face", {"AU12": 3}, seed=7, **fast).images[0]
    layers = attention_layers(fused_pipe.sd.unet).values()
    kept = {layer: [layer.get_submodule(name).weight.clone() for name in ("to_q", "to_k", "to_v")] for layer in layers}
    try:
        with torch.no_grad():  # only what a fused layer no longer reads; to_q still serves cross-attention
            for layer in layers:
                for name in ("to_k", "to_v") if layer.is_cross_attention else ("to_q", "to_k", "to_v"):
                    layer.get_submodule(name).weight.normal_()
        after = fused_pipe("a face", {"AU12": 3}, seed=7, **fast).images[0]
    finally:
        with torch.no_grad():
            for layer, weights in kept.items():
                for name, weight in zip(("to_q", "to_k", "to_v"), weights):
                    layer.get_submodule(name).weight.copy_(weight)
    assert np.array_equal(pixels(before), pixels(after))
