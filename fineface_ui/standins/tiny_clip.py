"""A tiny random CLIP (text and image towers) written as openai/clip-vit-large-patch14 holds it: config.json,
model.safetensors and preprocessor_config.json at the folder's root. Its embeddings mean nothing; the files,
keys and loading path are the real ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import CLIPConfig, CLIPModel
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

IMAGE_SIZE = 32
PROJECTION_DIM = 16


def write_tiny_clip(folder: Path, seed: int = 6) -> Path:
    """A two-layer CLIPModel and its image preprocessing settings; the same seed writes the same bytes."""
    folder = Path(folder)
    # Each tower reads its own projection_dim (the top-level one does not reach them), as the real config sets it.
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
             "projection_dim": PROJECTION_DIM}
    config = CLIPConfig(text_config={**tower, "vocab_size": 64, "max_position_embeddings": 16, "bos_token_id": 62,
                                     "eos_token_id": 63},
                        vision_config={**tower, "image_size": IMAGE_SIZE, "patch_size": 8},
                        projection_dim=PROJECTION_DIM)
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(IMAGE_SIZE), indent=2))
    return folder


def preprocessor_config(image_size: int) -> dict[str, Any]:
    """openai/clip-vit-large-patch14's preprocessor_config.json, for images of `image_size`. In the form the real
    repo holds it (integer sizes, the old feature-extractor type), so that form is what loads."""
    return {
        "crop_size": image_size, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": list(OPENAI_CLIP_MEAN),
        "image_std": list(OPENAI_CLIP_STD), "resample": 3, "size": image_size,
    }
