"""Tiny random MagicFace weights in the released layout: the FINEFACE_MAGICFACE repo's two UNet folders
(the denoising one with 8 input channels and its au_aug_mlp keys) and its face parser, and the SD 1.5
parts MagicFace loads (VAE, text encoder, tokenizer, scheduler). Edits from them are noise; the loading
and the data path are the real ones.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file, save_file

from ..aus import NUM_AUS
from ..engine.magicface import AU_PROJECTION
from ..hub.model_sources import DENOISING_UNET, FACE_PARSER_FILE, IDENTITY_UNET, MODEL_WEIGHTS_FILE
from .tiny_face_parser import write_face_parser
from .tiny_models import SD15_TOKEN_DIM, tiny_base_pipeline, write_preview_decoder

# SD 1.5's scheduler_config.json as the Hub holds it: written by diffusers 0.6, it names no timestep spacing.
SD15_SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
    "clip_sample": False,
}
# The authors' UNet classes, as their config.json files name them (diffusers loads them as its own UNet).
CLASS_NAMES = {DENOISING_UNET: "UNetDeno2DConditionModel", IDENTITY_UNET: "UNetID2DConditionModel"}


def tiny_unet(in_channels: int, seed: int) -> UNet2DConditionModel:
    """An SD 1.5-shaped UNet (cross-attention down, mid and up; no linear projection), tiny. Two heads, not
    SD 1.5's eight: at 4096 tokens attending to 8192 (the ID features added), heads of 8 and 16 channels make
    a CPU step four times quicker than heads of 2 and 4."""
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=32, in_channels=in_channels, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=SD15_TOKEN_DIM, attention_head_dim=2, norm_num_groups=8,
    )


def _save_unet(unet: UNet2DConditionModel, folder: Path, extra: dict[str, torch.Tensor]) -> None:
    unet.save_pretrained(folder)
    if extra:
        weights = folder / MODEL_WEIGHTS_FILE
        save_file({**load_file(weights), **extra}, weights, metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config["_class_name"] = CLASS_NAMES[folder.name]
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def write_magicface(root: Path, seed: int = 20) -> dict[str, Path]:
    """The folders MagicFacePipeline.from_pretrained takes, by argument name."""
    root = Path(root)
    magicface, base = root / "magicface", root / "sd15"
    denoiser = tiny_unet(8, seed)
    width = denoiser.time_embedding.linear_2.out_features
    generator = torch.Generator().manual_seed(seed + 1)
    _save_unet(denoiser, magicface / DENOISING_UNET, {
        f"{AU_PROJECTION}.weight": torch.randn(width, NUM_AUS, generator=generator) * 0.2,
        f"{AU_PROJECTION}.bias": torch.randn(width, generator=generator) * 0.05,
    })
    _save_unet(tiny_unet(4, seed + 2), magicface / IDENTITY_UNET, {})
    write_face_parser(magicface / FACE_PARSER_FILE, seed=seed + 3)
    sd = tiny_base_pipeline(SD15_TOKEN_DIM, linear_projection=False, seed=seed + 4)
    sd.save_pretrained(base)
    shutil.rmtree(base / "unet")  # the mirror has one, but MagicFace brings its own and never loads it
    (base / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD15_SCHEDULER_CONFIG, indent=2))
    return {"magicface_weights": magicface, "base_model": base,
            "preview_decoder": write_preview_decoder(root / "taesd", seed=seed + 5)}
