"""MagicFacePipeline on tiny random weights in the released layout: loading with every key checked, and the
data path of docs/magicface.md (unscaled conditions, ID features in self-attention, AU change in the time
embedding, guidance from the zero change)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

from fineface_ui import MagicFacePipeline
from fineface_ui.edit_settings import EditSettings
from fineface_ui.engine.magicface import AU_PROJECTION
from fineface_ui.engine.reference_attention import reference_features, transformer_blocks
from fineface_ui.errors import CheckpointError, InvalidInputError
from fineface_ui.hub.model_sources import DENOISING_UNET, IDENTITY_UNET, MODEL_WEIGHTS_FILE

SIDE = 64  # the crop side of these tests: 8x8 latents keep a tiny edit quick


def picture(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def crops():
    return picture(1), picture(2)


def edit(pipe, source, background, aus="AU12=3", **options):
    settings = EditSettings.create({}, aus, **{"num_inference_steps": 3, **options})
    return np.asarray(pipe.edit(source, background, settings).crop, dtype=np.int16)


def test_the_same_seed_gives_the_same_edit_and_another_seed_another(magicface_pipe, crops):
    first = edit(magicface_pipe, *crops, seed=5)
    assert np.array_equal(first, edit(magicface_pipe, *crops, seed=5))
    assert not np.array_equal(first, edit(magicface_pipe, *crops, seed=6))


def test_the_au_change_moves_the_edit_and_the_zero_change_is_the_unguided_edit(magicface_pipe, crops):
    # The unconditional branch is the zero change: with no change asked, guidance has nothing to amplify.
    assert np.array_equal(edit(magicface_pipe, *crops, aus=None, guidance_scale=1.5),
                          edit(magicface_pipe, *crops, aus=None, guidance_scale=4))
    assert not np.array_equal(edit(magicface_pipe, *crops, aus="AU12=3"), edit(magicface_pipe, *crops, aus=None))


def test_the_change_is_target_minus_read_and_reaches_the_time_embedding(magicface_pipe, crops):
    seen = []
    handle = magicface_pipe.denoiser.class_embedding.register_forward_hook(
        lambda module, args, output: seen.append(args[0].clone()))
    try:
        settings = EditSettings.create({"AU12": 1.0, "AU6": 2.0}, "AU12=4", change="AU6=-1", num_inference_steps=1)
        magicface_pipe.edit(*crops, settings)
    finally:
        handle.remove()
    unconditional, conditional = seen[0].tolist()
    assert unconditional == [0.0] * 12
    assert conditional[6] == pytest.approx(3.0) and conditional[4] == pytest.approx(-1.0)
    assert sum(value != 0 for value in conditional) == 2


def test_the_background_enters_as_unscaled_latents_beside_the_noisy_ones(magicface_pipe, crops):
    source, background = crops
    inputs = []
    handle = magicface_pipe.denoiser.conv_in.register_forward_hook(lambda module, args, output: inputs.append(args[0]))
    try:
        magicface_pipe.edit(source, background, EditSettings.create({}, None, num_inference_steps=1))
    finally:
        handle.remove()
    pixels = magicface_pipe.image_processor.preprocess(background)
    expected = magicface_pipe.vae.encode(pixels).latent_dist.mode()  # MagicFace does not scale by 0.18215
    assert inputs[0].shape[1] == 8
    torch.testing.assert_close(inputs[0][:, 4:], expected.expand(2, -1, -1, -1))


def test_the_source_reaches_the_edit_only_through_the_id_features(magicface_pipe, crops):
    source, background = crops
    inputs = []
    handle = magicface_pipe.denoiser.conv_in.register_forward_hook(lambda module, args, output: inputs.append(args[0]))
    try:
        first, other = (edit(magicface_pipe, picture, background, num_inference_steps=1) for picture in (source,
                                                                                                         picture(3)))
    finally:
        handle.remove()
    assert torch.equal(inputs[0], inputs[1])  # the UNet's input does not see the source...
    assert not np.array_equal(first, other)  # ...its self-attention does


def test_every_self_attention_attends_over_its_tokens_and_the_id_features_of_its_block(magicface_pipe, crops):
    pipe = magicface_pipe
    latents = pipe.vae.encode(pipe.image_processor.preprocess(crops[0])).latent_dist.mode()
    text = pipe._prompt_embedding()
    features = reference_features(pipe.identity_unet, latents, text)
    assert set(features) == set(transformer_blocks(pipe.denoiser)) and len(features) == 7  # 2 down, 1 mid, 4 up
    name = "down_blocks.1.attentions.0.transformer_blocks.0"
    block = transformer_blocks(pipe.denoiser)[name]
    processor = pipe.references[name]
    hidden = torch.randn(2, features[name].shape[1], features[name].shape[2])
    processor.begin_request(features[name])
    try:
        ours = block.attn1(block.norm1(hidden))
    finally:
        processor.end_request()
    # MagicFace's own formulation: self-attention over [x; reference], both through the denoising block's
    # norm1, keeping the first N outputs.
    both = block.norm1(torch.cat([hidden, features[name].expand(2, -1, -1)], dim=1))
    attn = block.attn1
    q, k, v = (projection(both).view(2, -1, attn.heads, both.shape[-1] // attn.heads).transpose(1, 2)
               for projection in (attn.to_q, attn.to_k, attn.to_v))
    theirs = attn.to_out[0](F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, -1, both.shape[-1]))
    torch.testing.assert_close(ours, theirs[:, :hidden.shape[1]], atol=1e-5, rtol=1e-5)


def test_a_preview_runs_few_steps_and_is_not_the_full_edit(magicface_pipe, crops):
    settings = EditSettings.create({}, "AU12=3", num_inference_steps=12)
    preview = magicface_pipe.edit(*crops, settings, preview=True)
    assert preview.metadata["num_inference_steps"] == 8
    assert preview.crop.size == (SIDE, SIDE)


def test_the_schedule_is_magicfaces_unipc_from_999_to_20_ending_at_the_last_training_sigma(magicface_files,
                                                                                          crops, tmp_path):
    # Even from a copy of SD 1.5's config re-saved with PNDM's "leading" spacing (which would start at 951).
    base = tmp_path / "sd15"
    shutil.copytree(magicface_files["base_model"], base)
    config = base / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "timestep_spacing": "leading"}))
    pipe = MagicFacePipeline.from_pretrained(**{**magicface_files, "base_model": base}, device="cpu")
    seen = []
    handle = pipe.denoiser.register_forward_pre_hook(lambda module, args: seen.append(int(args[1])))
    try:
        pipe.edit(*crops, EditSettings.create({}, None, num_inference_steps=50))
    finally:
        handle.remove()
    assert seen[:2] == [999, 979] and seen[-1] == 20 and len(seen) == 50
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    scheduler.set_timesteps(50)
    assert type(scheduler).__name__ == "UniPCMultistepScheduler"
    assert scheduler.sigmas[-1] == pytest.approx(0.0292, abs=1e-4)  # not 0: diffusers 0.25's end, MagicFace's


def test_a_source_and_background_of_different_sizes_are_refused(magicface_pipe, crops):
    settings = EditSettings.create({}, None, num_inference_steps=1)
    with pytest.raises(InvalidInputError, match="must be one size, a multiple of 8"):
        magicface_pipe.edit(crops[0], crops[1].resize((48, 48)), settings)
    with pytest.raises(InvalidInputError, match="must be one size, a multiple of 8"):
        magicface_pipe.edit(crops[0].resize((60, 60)), crops[1].resize((60, 60)), settings)


def copy_with(magicface_files, tmp_path, folder, change):
    """The tiny files, with `change(state)` applied to one UNet's weights."""
    root = tmp_path / "magicface"
    shutil.copytree(magicface_files["magicface_weights"], root)
    path = root / folder / MODEL_WEIGHTS_FILE
    state = load_file(path)
    change(state)
    save_file(state, path, metadata={"format": "pt"})
    return {**magicface_files, "magicface_weights": root}


@pytest.mark.parametrize("folder, change, named", [
    (DENOISING_UNET, lambda state: state.pop(f"{AU_PROJECTION}.bias"), f"{AU_PROJECTION}.bias"),
    (DENOISING_UNET, lambda state: state.update({"au_mlp.weight": state.pop(f"{AU_PROJECTION}.weight")}),
     "au_mlp.weight"),
    (IDENTITY_UNET, lambda state: state.update({"conv_in.weights": state.pop("conv_in.weight")}), "conv_in.weight"),
    (IDENTITY_UNET, lambda state: state.pop("mid_block.attentions.0.proj_out.bias"),
     "mid_block.attentions.0.proj_out.bias"),
])
def test_a_missing_or_renamed_key_fails_loading_naming_it(magicface_files, tmp_path, folder, change, named):
    files = copy_with(magicface_files, tmp_path, folder, change)
    with pytest.raises(CheckpointError, match=named.replace(".", r"\.")):
        MagicFacePipeline.from_pretrained(**files, device="cpu", allow_download=False)


def test_a_denoising_unet_without_the_background_channels_is_refused(magicface_files, tmp_path):
    root = tmp_path / "magicface"
    shutil.copytree(magicface_files["magicface_weights"], root)
    shutil.rmtree(root / DENOISING_UNET)
    shutil.copytree(root / IDENTITY_UNET, root / DENOISING_UNET)  # 4 input channels, no AU projection
    state = load_file(root / DENOISING_UNET / MODEL_WEIGHTS_FILE)
    width = state["time_embedding.linear_2.weight"].shape[0]
    save_file({**state, f"{AU_PROJECTION}.weight": torch.zeros(width, 12), f"{AU_PROJECTION}.bias": torch.zeros(width)},
              root / DENOISING_UNET / MODEL_WEIGHTS_FILE, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="takes 4 input channels"):
        MagicFacePipeline.from_pretrained(**{**magicface_files, "magicface_weights": root}, device="cpu",
                                          allow_download=False)


def test_a_text_encoder_missing_a_weight_fails_loading_naming_it(magicface_files, tmp_path):
    base = tmp_path / "sd15"
    shutil.copytree(magicface_files["base_model"], base)
    path = base / "text_encoder" / "model.safetensors"
    state = load_file(path)
    del state["final_layer_norm.weight"]
    save_file(state, path, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"final_layer_norm\.weight"):
        MagicFacePipeline.from_pretrained(**{**magicface_files, "base_model": base}, device="cpu",
                                          allow_download=False)

