"""MagicFacePipeline: a photo's face crop with its expression changed, by MagicFace (Wei et al. 2025)
on Stable Diffusion 1.5 (docs/magicface.md gives each fact below with its source).

The data path, top to bottom: the source crop and its background condition (512 px RGB, faces/edit_inputs.py)
-> VAE latents, *unscaled* (MagicFace conditions on the raw posterior mode) -> the ID UNet's block inputs,
once, at timestep 0 -> the denoising loop: the UNet sees [noisy latents; background latents] (8 channels),
the AU change projected into its time embedding, and the ID features in every self-attention; guidance
runs from the zero AU change to the one asked for -> the VAE decodes the crop.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderTiny,
    UNet2DConditionModel,
    UniPCMultistepScheduler,
)
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import logging as diffusers_logging
from PIL import Image
from safetensors import safe_open
from torch import nn
from transformers import CLIPTextModel, CLIPTokenizer

from ..aus import NUM_AUS
from ..edit_settings import EDIT_PIPELINE, EditSettings
from ..errors import CheckpointError, InvalidInputError
from ..hub.model_sources import (
    DENOISING_UNET,
    IDENTITY_UNET,
    MODEL_WEIGHTS_FILE,
    edit_weights,
)
from ..hub.versions import library_versions
from ..hub.weights import display_name, resolve
from .checkpoints import check_keys, check_loading_info
from .denoising import StepCallback
from .loading import (
    cast_components,
    default_device_and_dtype,
    load_component,
    load_model,
    models_loaded,
)
from .pipeline import readable_memory_errors
from .previews import PREVIEW_STEPS, PreviewCallback, decode_preview, glimpser
from .reference_attention import (
    install_reference_attention,
    reference_features,
    references_attended,
)

# MagicFace's text condition is this one fixed prompt (its inference.py); the edit has no prompt box.
PROMPT = "A close up of a person."
# The denoising UNet's AU projection: MagicFace adds au_aug_mlp(change) to the time embedding, which is
# what diffusers does with a class embedding, so the Linear goes in that slot: diffusers is told the UNet has
# one (DENOISER_OPTIONS, beyond its config.json) and install_au_projection fills it.
AU_PROJECTION = "au_aug_mlp"
DENOISER_OPTIONS = {"class_embed_type": "identity"}
# The denoising UNet's input: the noisy latents and the background condition's, four channels each.
DENOISER_IN_CHANNELS = 8
TEXT_ENCODER_WEIGHTS_FILE = "model.safetensors"


@dataclass
class EditOutput:
    crop: Image.Image  # the edited 512 px face crop; faces/edit_inputs.py pastes it into the photo
    metadata: dict[str, Any]


class MagicFacePipeline:
    """MagicFace's two UNets with SD 1.5's VAE and text encoder; `edit` changes a crop's expression."""

    def __init__(self, denoiser: UNet2DConditionModel, identity_unet: UNet2DConditionModel, vae: AutoencoderKL,
                 text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer, scheduler: UniPCMultistepScheduler,
                 preview_decoder: AutoencoderTiny, models: dict[str, dict[str, str]]) -> None:
        self.denoiser = denoiser
        self.identity_unet = identity_unet
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.preview_decoder = preview_decoder
        self.models = models
        self.references = install_reference_attention(denoiser)
        self.image_processor = VaeImageProcessor(vae_scale_factor=2 ** (len(vae.config.block_out_channels) - 1))
        self._text: torch.Tensor | None = None  # the fixed prompt's embedding, encoded once
        self._lock = threading.Lock()  # one edit at a time: the processors hold the running request's features

    @property
    def device(self) -> torch.device:
        return self.denoiser.device

    @property
    def dtype(self) -> torch.dtype:
        return self.denoiser.dtype

    @classmethod
    def from_pretrained(cls, magicface_weights: str | Path | None = None, base_model: str | Path | None = None, *,
                        preview_decoder: str | Path | None = None, device: str | torch.device | None = None,
                        dtype: torch.dtype | None = None, allow_download: bool = True) -> "MagicFacePipeline":
        """Load from Hub repo ids or local folders (defaults: hub/model_sources.py), every key checked."""
        device, dtype = default_device_and_dtype(device, dtype)
        weights = edit_weights(magicface_weights, base_model, preview_decoder)
        needed = {role: weights[role] for role in ("unets", "base_model", "preview_decoder")}  # the parser: faces/
        found = resolve(needed.values(), allow_download)
        unets, base = found[needed["unets"]], found[needed["base_model"]]
        pipe = cls(
            denoiser=load_denoiser(unets / DENOISING_UNET, dtype),
            identity_unet=load_model(UNet2DConditionModel, unets / IDENTITY_UNET, dtype),
            vae=load_model(AutoencoderKL, base / "vae", dtype),
            text_encoder=load_text_encoder(base / "text_encoder", dtype),
            tokenizer=CLIPTokenizer.from_pretrained(base / "tokenizer"),
            scheduler=edit_scheduler(UniPCMultistepScheduler.load_config(base / "scheduler")),
            preview_decoder=load_model(AutoencoderTiny, found[needed["preview_decoder"]], dtype),
            models=models_loaded(needed, found),
        )
        return pipe.to(device, dtype)

    def to(self, device: torch.device | str, dtype: torch.dtype) -> "MagicFacePipeline":
        cast_components([self.denoiser, self.identity_unet, self.vae, self.text_encoder, self.preview_decoder],
                        device, dtype)
        self._text = None
        return self

    @torch.no_grad()
    def edit(self, source: Image.Image, background: Image.Image, settings: EditSettings,
             on_step: StepCallback | None = None, on_preview: PreviewCallback | None = None,
             preview: bool = False) -> EditOutput:
        """The source crop with the AU change of `settings`; `background` is MagicFace's background-and-pose
        condition of the same size. `preview`: PREVIEW_STEPS steps at most and TAESD's decode."""
        if source.size != background.size or source.width % 8 or source.height % 8:
            raise InvalidInputError(f"The source ({source.width}x{source.height}) and its background "
                                    f"({background.width}x{background.height}) must be one size, a multiple of 8 "
                                    "pixels a side (faces/edit_inputs.py makes both at 512).")
        steps = min(PREVIEW_STEPS, settings.num_inference_steps) if preview else settings.num_inference_steps
        with self._lock, readable_memory_errors():
            text = self._prompt_embedding()
            source_latents, background_latents = self._encode(source), self._encode(background)
            features = reference_features(self.identity_unet, source_latents, text)
            with references_attended(self.references, features):
                latents = self._denoise(source_latents.shape, background_latents, text, settings, steps,
                                        on_step, glimpser(self.decode_quickly, on_preview, steps))
            crop = self.decode_quickly(latents)[0] if preview else self._decode(latents)
        return EditOutput(crop, self.metadata(settings, steps))

    def _denoise(self, shape: torch.Size, background: torch.Tensor, text: torch.Tensor, settings: EditSettings,
                 steps: int, on_step: StepCallback | None, on_latents: Any) -> torch.Tensor:
        scheduler = UniPCMultistepScheduler.from_config(self.scheduler.config)  # a fresh one: it keeps state
        scheduler.set_timesteps(steps, device=self.device)
        noise = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(settings.seed))
        latents = noise.to(self.device, self.dtype) * scheduler.init_noise_sigma
        change = torch.tensor([settings.change()], device=self.device, dtype=self.dtype)
        # Batch [unconditional, conditional]: the zero AU change (no edit) against the change asked for.
        au_batch = torch.cat([torch.zeros_like(change), change])
        background, text = background.expand(2, -1, -1, -1), text.expand(2, -1, -1)
        for step, timestep in enumerate(scheduler.timesteps):
            model_input = scheduler.scale_model_input(torch.cat([latents] * 2), timestep)
            noise_pred = self.denoiser(torch.cat([model_input, background], dim=1), timestep,
                                       encoder_hidden_states=text, class_labels=au_batch).sample
            unconditional, conditional = noise_pred.chunk(2)
            guided = unconditional + settings.guidance_scale * (conditional - unconditional)
            latents = scheduler.step(guided, timestep, latents).prev_sample
            if on_step is not None:
                on_step(step + 1, steps)
            if on_latents is not None:
                on_latents(latents, step + 1)
        return latents

    def _prompt_embedding(self) -> torch.Tensor:
        if self._text is None:
            ids = self.tokenizer(PROMPT, padding="max_length", max_length=self.tokenizer.model_max_length,
                                 truncation=True, return_tensors="pt").input_ids
            self._text = self.text_encoder(ids.to(self.device))[0].to(self.dtype)
        return self._text

    def _encode(self, image: Image.Image) -> torch.Tensor:
        """The VAE posterior's mode, not multiplied by the VAE's scaling factor: MagicFace's conditions are so."""
        pixels = self.image_processor.preprocess(image.convert("RGB")).to(self.device, self.dtype)
        return self.vae.encode(pixels).latent_dist.mode()

    def _decode(self, latents: torch.Tensor) -> Image.Image:
        pixels = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        return self.image_processor.postprocess(pixels.float(), output_type="pil")[0]

    def decode_quickly(self, latents: torch.Tensor) -> list[Image.Image]:
        """TAESD's rough picture of the denoised latents (which, unlike the conditions, are scaled as usual)."""
        return decode_preview(self.preview_decoder, self.image_processor, latents)

    def metadata(self, settings: EditSettings, steps: int) -> dict[str, Any]:
        return {
            **settings.as_dict(),
            "num_inference_steps": steps,
            "prompt": PROMPT,
            "scheduler": "unipc",
            "pipeline": EDIT_PIPELINE,
            "models": self.models,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "versions": library_versions(),
        }


def load_text_encoder(folder: Path, dtype: torch.dtype) -> CLIPTextModel:
    """SD 1.5's CLIP text encoder, every key checked (transformers only warns of a missing one)."""
    model, loading_info = load_component(CLIPTextModel, folder, dtype, output_loading_info=True)
    check_loading_info(folder / TEXT_ENCODER_WEIGHTS_FILE, loading_info)
    return model


def edit_scheduler(noise_schedule: dict[str, Any]) -> UniPCMultistepScheduler:
    """MagicFace's UniPC on SD 1.5's noise schedule (its scheduler_config.json, a PNDM config).

    SD 1.5's config names no timestep spacing, so UniPC's own, linspace (999, 979, ..., 20), is what MagicFace
    ran; a re-saved copy of the config may name PNDM's "leading", hence set here. diffusers now ends UniPC at
    sigma 0 by default; the version MagicFace was made with ended at the last training sigma, which sigma_min
    restores."""
    return UniPCMultistepScheduler.from_config(noise_schedule, timestep_spacing="linspace",
                                               final_sigmas_type="sigma_min")


def au_projection_shapes(unet: UNet2DConditionModel) -> dict[str, tuple[int, ...]]:
    """The AU projection's keys and shapes in the denoising UNet's file: Linear(12, time embedding width)."""
    width = unet.time_embedding.linear_2.out_features
    return {f"{AU_PROJECTION}.weight": (width, NUM_AUS), f"{AU_PROJECTION}.bias": (width,)}


def install_au_projection(unet: UNet2DConditionModel) -> nn.Linear:
    """Put a (randomly initialised) AU projection in the class-embedding slot of a UNet built with
    DENOISER_OPTIONS, on the UNet's device and in its dtype, and return it."""
    weight_shape = au_projection_shapes(unet)[f"{AU_PROJECTION}.weight"]
    unet.class_embedding = nn.Linear(weight_shape[1], weight_shape[0], device=unet.device, dtype=unet.dtype)
    return unet.class_embedding


def load_denoiser(folder: Path, dtype: torch.dtype) -> UNet2DConditionModel:
    """MagicFace's denoising UNet: a diffusers UNet whose class-embedding slot holds the AU projection
    (Linear(12, time embedding width)), every key of the file accounted for."""
    with _diffusers_quiet():  # it would warn of au_aug_mlp's keys, which are loaded below
        unet, loading_info = load_component(UNet2DConditionModel, folder, dtype, output_loading_info=True,
                                            **DENOISER_OPTIONS)
    path = folder / MODEL_WEIGHTS_FILE
    extra = au_projection_shapes(unet)
    check_loading_info(path, {"missing_keys": loading_info["missing_keys"],
                              "unexpected_keys": sorted(set(loading_info["unexpected_keys"]) - set(extra))})
    with safe_open(path, framework="pt") as weights:
        state = {key: weights.get_tensor(key) for key in extra if key in weights.keys()}
    check_keys(path, state, extra)
    if unet.config.in_channels != DENOISER_IN_CHANNELS:
        raise CheckpointError(f"{display_name(path)} takes {unet.config.in_channels} input channels; MagicFace's "
                              f"denoising UNet takes {DENOISER_IN_CHANNELS} (the noisy latents and the background "
                              "condition's).")
    install_au_projection(unet).load_state_dict(
        {key.removeprefix(f"{AU_PROJECTION}."): value for key, value in state.items()})
    return unet


@contextmanager
def _diffusers_quiet() -> Iterator[None]:
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(level)
