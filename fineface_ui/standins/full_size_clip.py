"""A stand-in of the CLIP `fineface-ui eval` loads for CLIP-I (openai/clip-vit-large-patch14, ViT-L/14) at its
full size, for the benchmark: its image tower and projection with random weights, and its preprocessing. It costs
what the real tower costs to run; its embeddings mean nothing.

Built in memory, on the target device: ClipImageEncoder.from_folder would load the same layers, in fp32 with
the same attention, from a 1.7 GB file holding the text tower as well, and its preprocessing is read here from
the same settings the tiny stand-in writes.
"""

from __future__ import annotations

import torch
from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

from ..evaluation.clip_similarity import ClipImageEncoder
from .tiny_clip import preprocessor_config

# openai/clip-vit-large-patch14 config.json, its vision_config (and projection_dim 768).
VIT_L_14 = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
            "image_size": 224, "patch_size": 14, "projection_dim": 768, "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5}


def vision_tower(device: str | torch.device, seed: int = 4) -> CLIPVisionModelWithProjection:
    """ViT-L/14's image tower and projection, random fp32 weights drawn on `device`."""
    torch.manual_seed(seed)
    with torch.device(device):
        return CLIPVisionModelWithProjection(CLIPVisionConfig(**VIT_L_14)).eval()


def full_size_clip(device: str | torch.device) -> ClipImageEncoder:
    """CLIP-I's encoder with the stand-in tower, ready to embed on `device`."""
    processor = CLIPImageProcessorPil.from_dict(preprocessor_config(VIT_L_14["image_size"]))
    return ClipImageEncoder(vision_tower(device), processor,
                            {"repo": "random full-size openai/clip-vit-large-patch14", "revision": "random"})
