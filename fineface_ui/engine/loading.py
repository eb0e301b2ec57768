"""From local files to a pipeline's parts: the diffusers base pipeline (with its separate VAE, when the
variant has one), the AU adapter and the TAESD preview decoder.

hub/weights.py finds the files; checkpoints.py reads them with every key checked; this module builds
the models they fill. FineFacePipeline.from_pretrained composes these per variant (variants.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, TypeVar

import torch
from diffusers import AutoencoderKL, AutoencoderTiny, ModelMixin, StableDiffusionPipeline
from safetensors import SafetensorError
from torch import nn

from ..hub.model_sources import MODEL_WEIGHTS_FILE, Weight
from ..hub.weights import provenance
from .attention import FineFaceAttnProcessor, install_processors
from .au_encoder import AUEncoder
from .checkpoints import check_loading_info, corrupt_file_error, load_checked, load_parameters, read_state_dict
from .variants import Variant

AU_BRANCH_KEYS = ("au_to_k.weight", "au_to_v.weight")
Model = TypeVar("Model", bound=ModelMixin)


def default_device_and_dtype(device: str | torch.device | None, dtype: torch.dtype | None) -> tuple[torch.device, torch.dtype]:
    """fp16 on CUDA, fp32 elsewhere (CPU half precision is slow and lossy)."""
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    return device, dtype


def models_loaded(needed: dict[str, Weight], paths: dict[Weight, Path]) -> dict[str, dict[str, str]]:
    """Repo id and revision per model variable, for the metadata that reproduces an image."""
    return {weight.variable: provenance(weight, paths[weight]) for weight in needed.values() if weight.variable}


def load_component(loader: Any, folder: Path, dtype: torch.dtype, **options: Any) -> Any:
    """`loader.from_pretrained(folder)`, a corrupt or truncated file in it reported as a CheckpointError."""
    try:
        return loader.from_pretrained(folder, dtype=dtype, **options)
    except (OSError, SafetensorError) as error:  # the folder is complete (weights.py checked): a damaged file
        raise corrupt_file_error(folder, error) from error


def load_model(model_class: type[Model], folder: Path, dtype: torch.dtype) -> Model:
    """A single diffusers model saved at the folder's root, every key of its weights file checked."""
    model, loading_info = load_component(model_class, folder, dtype, output_loading_info=True)
    check_loading_info(folder / MODEL_WEIGHTS_FILE, loading_info)
    return model


def load_preview_decoder(folder: Path, dtype: torch.dtype) -> AutoencoderTiny:
    """TAESD, the tiny decoder of live previews, from a local folder."""
    return load_model(AutoencoderTiny, folder, dtype)


def load_base_pipeline(folder: Path, dtype: torch.dtype, vae_folder: Path | None = None) -> StableDiffusionPipeline:
    """The diffusers pipeline from a local folder, with the VAE of `vae_folder` when the variant has its own;
    FineFace needs no safety checker or image encoder."""
    vae = {"vae": load_model(AutoencoderKL, vae_folder, dtype)} if vae_folder is not None else {}
    sd = load_component(StableDiffusionPipeline, folder, dtype, safety_checker=None, feature_extractor=None,
                        requires_safety_checker=False, **vae)
    sd.set_progress_bar_config(disable=True)  # progress goes through on_step instead
    return sd


def cast_components(models: Iterable[Any], device: torch.device | str, dtype: torch.dtype) -> None:
    """Move every model among `models` to `device` and cast each one not already in `dtype`. Per model,
    not diffusers' pipeline.to: its cast can skip models, and casting a model already in `dtype` makes it warn."""
    for model in models:
        if isinstance(model, nn.Module):
            if all(parameter.dtype == dtype for parameter in model.parameters()):
                model.to(device)
            else:
                model.to(device, dtype)


def load_au_adapter(unet: nn.Module, variant: Variant, encoder_path: Path, adapter_path: Path,
                    ) -> tuple[AUEncoder, dict[str, FineFaceAttnProcessor]]:
    """Build the AU encoder and swap in FineFace processors (with identity projections when the variant
    has the identity adapter), the AU weights loaded with every key checked."""
    token_dim = unet.config.cross_attention_dim
    au_encoder = AUEncoder(variant.au_hidden_dim(token_dim), token_dim)
    load_checked(au_encoder, encoder_path)
    adapters = install_processors(unet, token_dim, token_dim if variant.identity_adapter else None)
    load_parameters(adapter_path, read_state_dict(adapter_path), {
        f"{name}.{key}": processor.get_parameter(key) for name, processor in adapters.items() for key in AU_BRANCH_KEYS
    })
    return au_encoder, adapters
