"""The real SD 2.1-base / SD 1.5 layouts, built on the meta device, match what the loaders expect."""

import pytest
import torch

from fineface_ui.engine.attention import FineFaceAttnProcessor, attention_layers, install_processors
from fineface_ui.engine.identity_adapter import identity_layer_indices
from fineface_ui.engine.lora import expected_lora_shapes
from fineface_ui.standins.layouts import SD15_UNET, SD21_BASE_UNET, meta_unet


@pytest.fixture(scope="module")
def sd21_unet():
    return meta_unet(SD21_BASE_UNET)


def adapter_shapes(unet, token_dim, identity_dim=None):
    with torch.device("meta"):
        adapters = install_processors(unet, token_dim, identity_dim)
    return adapters, {f"{name}.{key}": tuple(value.shape)
                      for name, proc in adapters.items() for key, value in proc.state_dict().items()}


def test_sd21_base_has_exactly_32_au_keys_of_shape_hidden_by_1024(sd21_unet):
    _, shapes = adapter_shapes(sd21_unet, 1024)
    assert len(shapes) == 32
    assert shapes["down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.au_to_k.weight"] == (320, 1024)
    assert shapes["mid_block.attentions.0.transformer_blocks.0.attn2.processor.au_to_v.weight"] == (1280, 1024)
    assert {shape[0] for shape in shapes.values()} == {320, 640, 1280}
    assert all(shape[1] == 1024 for shape in shapes.values())


def test_self_attention_keeps_diffusers_sdpa_processor(sd21_unet):
    adapter_shapes(sd21_unet, 1024)
    kinds = {name.split(".")[-2]: type(proc).__name__ for name, proc in sd21_unet.attn_processors.items()}
    assert kinds == {"attn1": "AttnProcessor2_0", "attn2": "FineFaceAttnProcessor"}


def test_sd21_base_lora_has_the_256_keys_peft_names(sd21_unet):
    from peft import LoraConfig, get_peft_model_state_dict

    expected = expected_lora_shapes(sd21_unet, rank=32)
    assert len(expected) == 256
    # The names PEFT itself gives this adapter (what diffusers' save_lora_weights writes, with 'unet.').
    unet = meta_unet(SD21_BASE_UNET)
    unet.add_adapter(LoraConfig(r=32, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    peft_keys = {f"unet.{key}" for key in get_peft_model_state_dict(unet)}
    assert peft_keys == set(expected)
    assert expected["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight"] == (32, 1024)
    assert expected["unet.up_blocks.3.attentions.2.transformer_blocks.0.attn1.to_out.0.lora_B.weight"] == (320, 32)


def test_sd15_has_32_au_keys_and_ip_indices_1_to_31_are_the_cross_attention_layers():
    unet = meta_unet(SD15_UNET)
    names = list(unet.attn_processors)
    adapters, shapes = adapter_shapes(unet, 768, identity_dim=768)
    au_shapes = {k: v for k, v in shapes.items() if ".au_to_" in k}
    assert len(au_shapes) == 32 and all(shape[1] == 768 for shape in au_shapes.values())
    ip_indices = identity_layer_indices(unet)  # what the identity loader reads the file's keys by
    assert sorted(ip_indices.values()) == list(range(1, 32, 2))
    assert all(names[index] == name and name.endswith("attn2.processor") for name, index in ip_indices.items())
    assert names[-1].startswith("mid_block")
    assert set(ip_indices) == set(adapters) == set(attention_layers(unet, cross_only=True))
    assert all(isinstance(adapters[name], FineFaceAttnProcessor) for name in ip_indices)


def test_full_size_taesd_has_the_decoder_keys_of_the_released_checkpoint():
    """madebyollin/taesd's diffusion_pytorch_model.safetensors was written from diffusers' AutoencoderTiny
    (its config.json holds the class defaults), so AutoencoderTiny() names its keys as the file does: convs
    at 0, 6, 11, 16 and 18, blocks of three convs at 2-4, 7-9, 12-14 and 17, each conv after an up-sampling bias-free."""
    from fineface_ui.standins.full_size import preview_decoder

    shapes = {key: tuple(value.shape) for key, value in preview_decoder("meta").state_dict().items()}
    decoder = {key: shape for key, shape in shapes.items() if key.startswith("decoder.")}
    assert len(decoder) == 67 and len(shapes) == 134
    assert decoder["decoder.layers.0.weight"] == (64, 4, 3, 3)  # 4 latent channels in
    assert decoder["decoder.layers.2.conv.0.weight"] == (64, 64, 3, 3)
    assert decoder["decoder.layers.17.conv.4.bias"] == (64,)
    assert decoder["decoder.layers.6.weight"] == (64, 64, 3, 3) and "decoder.layers.6.bias" not in decoder
    assert decoder["decoder.layers.18.weight"] == (3, 64, 3, 3) and decoder["decoder.layers.18.bias"] == (3,)


def test_the_full_size_clip_is_the_image_tower_of_the_clip_the_evaluation_loads():
    """openai/clip-vit-large-patch14 (ViT-L/14): 24 layers 1024 wide with 16 heads and quick GELU, over 14 px
    patches of a 224 px crop (256 patches and the class token), a bias-free projection to 768; images resized
    bicubically and normalized with OpenAI's mean and std (its config.json and preprocessor_config.json)."""
    from fineface_ui.hub.model_sources import DEFAULT_REPOS
    from fineface_ui.standins.full_size_clip import full_size_clip

    assert DEFAULT_REPOS["FINEFACE_CLIP"] == "openai/clip-vit-large-patch14"
    encoder = full_size_clip("meta")
    config = encoder.model.config
    assert (config.hidden_act, config.layer_norm_eps, config.num_attention_heads) == ("quick_gelu", 1e-5, 16)
    shapes = {key: tuple(value.shape) for key, value in encoder.model.state_dict().items()}
    # Embeddings and the first norm 5 keys, 16 per layer, the last norm and the projection 3.
    assert len(shapes) == 5 + 24 * 16 + 3
    assert sum(parameter.numel() for parameter in encoder.model.parameters()) == 303_966_208
    assert shapes["vision_model.embeddings.patch_embedding.weight"] == (1024, 3, 14, 14)
    assert shapes["vision_model.embeddings.position_embedding.weight"] == (257, 1024)
    assert shapes["vision_model.encoder.layers.23.mlp.fc1.weight"] == (4096, 1024)
    assert shapes["vision_model.encoder.layers.23.self_attn.q_proj.bias"] == (1024,)
    assert shapes["visual_projection.weight"] == (768, 1024) and "visual_projection.bias" not in shapes
    processor = encoder.processor
    assert processor.size == {"shortest_edge": 224} and processor.crop_size == {"height": 224, "width": 224}
    assert processor.resample == 3 and processor.do_center_crop and processor.do_normalize
    assert list(processor.image_mean) == [0.48145466, 0.4578275, 0.40821073]
    assert list(processor.image_std) == [0.26862954, 0.26130258, 0.27577711]
