"""FineFacePipeline: Stable Diffusion 2.1-base with the FineFace AU adapter (text + AUs -> image).

The data path, top to bottom: settings -> prompt embeddings (cached) -> AU tokens -> per-layer
adapter terms (once per request) -> diffusers' denoising loop -> images + metadata.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline
from PIL import Image
from safetensors import SafetensorError

from .acceleration import Acceleration, WarmedForward, accelerate, warming
from .attention import FineFaceAttnProcessor, install_processors, request_addresses
from .au_encoder import AUEncoder
from .aus import AUValues, au_vector
from .checkpoints import check_keys, corrupt_file_error, load_checked, read_state_dict
from .errors import GPUMemoryError, InvalidInputError
from .lora import TRAINED_LORA_SCALE, FusedLora
from .settings import GenerationSettings
from .versions import library_versions
from .model_sources import Weight, text_weights
from .weights import provenance, resolve

log = logging.getLogger(__name__)

StepCallback = Callable[[int, int], None]
PROMPT_CACHE_SIZE = 32


@dataclass
class FineFaceOutput:
    images: list[Image.Image]
    metadata: dict[str, Any]  # every setting, model and library version; `aus` has one entry per image

    def metadata_for(self, index: int) -> dict[str, Any]:
        """The metadata that reproduces image `index` alone."""
        return {**self.metadata, "aus": [self.metadata["aus"][index]]}


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


def load_base_pipeline(folder: Path, dtype: torch.dtype, **components: Any) -> StableDiffusionPipeline:
    """The diffusers pipeline from a local folder; FineFace needs no safety checker or image encoder."""
    sd = load_component(StableDiffusionPipeline, folder, dtype, safety_checker=None, feature_extractor=None,
                        requires_safety_checker=False, **components)
    sd.set_progress_bar_config(disable=True)  # progress goes through on_step instead
    return sd


def build_schedulers(base_scheduler: Any) -> dict[str, Any]:
    """'paper': the base model's own scheduler; 'dpm++': DPM-Solver++ 2M from the same noise schedule."""
    return {
        "paper": base_scheduler,
        "dpm++": DPMSolverMultistepScheduler.from_config(base_scheduler.config, algorithm_type="dpmsolver++"),
    }


class FineFacePipeline:
    """Text + AUs on Stable Diffusion 2.1-base. Call it like a diffusers pipeline."""

    kind = "sd21"

    @staticmethod
    def au_hidden_dim(token_dim: int) -> int:
        return 64  # Linear(12, 64), zero-padded to the 1024-wide token

    def __init__(
        self,
        sd: StableDiffusionPipeline,
        au_encoder: AUEncoder,
        adapters: dict[str, FineFaceAttnProcessor],
        models: dict[str, dict[str, str]],
        lora: FusedLora | None,
    ) -> None:
        self.sd = sd
        self.au_encoder = au_encoder
        self.adapters = adapters
        self.models = models  # per model variable: the repo id and revision it was loaded from
        self.lora = lora  # None: this pipeline has no LoRA
        self.schedulers = build_schedulers(sd.scheduler)
        self._prompt_cache: OrderedDict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        # One denoising loop at a time: the adapters hold the running request's terms.
        self._lock = threading.Lock()
        self._fast: list[WarmedForward] = []  # routed UNet/VAE forwards (acceleration.py), empty when off

    @property
    def device(self) -> torch.device:
        return self.sd.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.sd.unet.dtype

    # ---- loading -------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        base_model: str | Path | None = None,
        fineface_weights: str | Path | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        lora_scale: float = TRAINED_LORA_SCALE,
        allow_download: bool = True,
        acceleration: Acceleration | None = None,
    ) -> "FineFacePipeline":
        """Load the base model and the FineFace files (Hub repo ids or local folders).

        `acceleration` defaults to what wins on the device (Acceleration.default_for); on CUDA that
        includes a warm-up compile of a minute or two, done here rather than in the first request.
        """
        device, dtype = default_device_and_dtype(device, dtype)
        needed = text_weights(base_model, fineface_weights)
        paths = resolve(needed.values(), allow_download)
        sd = load_base_pipeline(paths[needed["base_model"]], dtype)
        au_encoder, adapters = cls._attach_au_adapter(sd, paths[needed["au_encoder"]], paths[needed["au_adapter"]])
        lora = FusedLora(sd.unet, paths[needed["lora"]], lora_scale)
        pipe = cls(sd, au_encoder, adapters, models_loaded(needed, paths), lora)
        return pipe.to(device, dtype).accelerate(acceleration)

    @classmethod
    def _attach_au_adapter(
        cls, sd: StableDiffusionPipeline, encoder_path: Path, adapter_path: Path, identity_dim: int | None = None
    ) -> tuple[AUEncoder, dict[str, FineFaceAttnProcessor]]:
        """Build the AU encoder and swap in FineFace processors, each loaded with every key checked."""
        token_dim = sd.unet.config.cross_attention_dim
        au_encoder = AUEncoder(cls.au_hidden_dim(token_dim), token_dim)
        load_checked(au_encoder, encoder_path)
        adapters = install_processors(sd.unet, token_dim, identity_dim)
        state = read_state_dict(adapter_path)
        branch = ("au_to_k.weight", "au_to_v.weight")
        check_keys(adapter_path, state, {
            f"{name}.{key}": tuple(processor.state_dict()[key].shape)
            for name, processor in adapters.items() for key in branch
        })
        with torch.no_grad():
            for name, processor in adapters.items():
                for key in branch:
                    processor.get_parameter(key).copy_(state[f"{name}.{key}"])
        return au_encoder, adapters

    def to(self, device: torch.device, dtype: torch.dtype) -> "FineFacePipeline":
        """Move and cast everything (fast paths are dropped: they hold the old weights' addresses)."""
        self.sd.to(device)
        if self.dtype != dtype:  # loading already chose the dtype; a cast here makes diffusers warn
            self.sd.to(dtype=dtype)
        self.au_encoder.to(device, dtype)
        for adapter in self.adapters.values():
            adapter.to(device, dtype)
            adapter.unpin_request_tensors()
        for forward in self._fast:
            forward.forget()
        self._prompt_cache.clear()
        return self

    def accelerate(self, acceleration: Acceleration | None = None) -> "FineFacePipeline":
        """Apply speed options (default: what wins on this device) and warm them up; see acceleration.py."""
        if self._fast:
            raise RuntimeError("speed options are applied once, when the pipeline is loaded")
        acceleration = acceleration or Acceleration.default_for(self.device)
        self._fast = accelerate(self.sd.unet, self.sd.vae, acceleration,
                                lambda: request_addresses(self.adapters.values()))
        if acceleration.needs_warm_up:
            log.info("Warming up %s (%s): compiling for 512x512, one image; takes a minute or two once.",
                     self.kind, acceleration)
            log.info("Warm-up done in %.1f s.", self.warm_up())
        return self

    def warm_up(self) -> float:
        """Build the fast paths for the default layout (512x512, one image); returns the seconds it took."""
        start = time.perf_counter()
        with warming(self._fast):
            self.generate(GenerationSettings.create("", None, num_inference_steps=2), face_embeds=self._warm_up_faces())
        return time.perf_counter() - start

    def _warm_up_faces(self) -> torch.Tensor | None:
        return None  # this pipeline takes no faces

    # ---- generation ----------------------------------------------------------------------------

    def __call__(
        self,
        prompt: str,
        aus: AUValues | Sequence[AUValues] | None = None,
        *,
        face_embeds: Any = None,
        on_step: StepCallback | None = None,
        **options: Any,
    ) -> FineFaceOutput:
        """One image per AU setting (a dict, list of 12, 'AU12=3' string, or a list of these).

        `face_embeds` (FaceEmbedder.embed()'s result) needs FineFaceIdentityPipeline.
        """
        return self.generate(GenerationSettings.create(prompt, aus, **options), on_step, face_embeds)

    @torch.no_grad()
    def generate(
        self,
        settings: GenerationSettings,
        on_step: StepCallback | None = None,
        face_embeds: Any = None,
    ) -> FineFaceOutput:
        """Run validated settings; every image shares the seed, so only the expression differs.

        `face_embeds` is FaceEmbedder.embed()'s result or its (n_faces, 512) tensor.
        """
        face_embeds = getattr(face_embeds, "embeddings", face_embeds)
        with self._lock:
            if self.lora is not None and settings.lora_scale is not None and settings.lora_scale != self.lora.scale:
                self.lora.set_scale(settings.lora_scale)
            count = len(settings.aus)
            # diffusers runs classifier-free guidance under exactly this condition, batch [uncond, cond].
            guided = settings.guidance_scale > 1
            positive, negative = self._prompt_embeddings(settings.prompt, settings.negative_prompt)
            au_tokens = self._au_tokens(settings.aus, guided)
            identity_tokens = self._identity_tokens(face_embeds, count, guided)
            for adapter in self.adapters.values():
                adapter.begin_request(au_tokens, settings.au_scale, identity_tokens, settings.ip_scale)
                if any(forward.warming for forward in self._fast):
                    adapter.pin_request_tensors()  # the graphs captured now will read these tensors
            try:
                self.sd.scheduler = self.schedulers[settings.scheduler]
                result = self.sd(
                    prompt_embeds=positive,
                    negative_prompt_embeds=negative,
                    num_images_per_prompt=count,
                    num_inference_steps=settings.num_inference_steps,
                    guidance_scale=settings.guidance_scale,
                    height=settings.height,
                    width=settings.width,
                    # One CPU generator per image, all with the same seed: identical starting noise on any device.
                    generator=[torch.Generator("cpu").manual_seed(settings.seed) for _ in range(count)],
                    callback_on_step_end=_step_reporter(on_step, settings.num_inference_steps),
                )
            except torch.OutOfMemoryError:
                log.warning("out of GPU memory", exc_info=True)
                torch.cuda.empty_cache()
                raise GPUMemoryError(GPUMemoryError.MESSAGE) from None
            finally:
                for adapter in self.adapters.values():
                    adapter.end_request()
        return FineFaceOutput(images=result.images, metadata=self._metadata(settings, face_embeds))

    def _prompt_embeddings(self, prompt: str, negative_prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        """CLIP embeddings of the prompt and the negative prompt, kept so a slider move skips the text encoder."""
        key = (prompt, negative_prompt)
        if key not in self._prompt_cache:
            positive, negative = self.sd.encode_prompt(prompt, self.device, 1, True, negative_prompt)
            self._prompt_cache[key] = (positive, negative)
            if len(self._prompt_cache) > PROMPT_CACHE_SIZE:
                self._prompt_cache.popitem(last=False)
        self._prompt_cache.move_to_end(key)
        return self._prompt_cache[key]

    def _au_tokens(self, aus: Sequence[dict[str, float]], guided: bool) -> torch.Tensor:
        """AU tokens in the UNet's batch order; the unconditional half is the all-zero AU vector's token."""
        values = torch.tensor([au_vector(item) for item in aus], device=self.device, dtype=self.dtype)
        if guided:
            values = torch.cat([torch.zeros_like(values), values])
        return self.au_encoder(values)

    def _identity_tokens(self, face_embeds: torch.Tensor | None, count: int, guided: bool) -> torch.Tensor | None:
        """Identity tokens for the batch; this pipeline has no identity adapter."""
        if face_embeds is not None:
            raise InvalidInputError("This pipeline has no identity adapter: use FineFaceIdentityPipeline for faces.")
        return None

    def _metadata(self, settings: GenerationSettings, face_embeds: torch.Tensor | None) -> dict[str, Any]:
        return {
            **settings.as_dict(),
            "lora_scale": self.lora.scale if self.lora is not None else None,  # the strength actually fused
            "pipeline": self.kind,
            "models": self.models,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "versions": library_versions(),
        }


def _step_reporter(on_step: StepCallback | None, total: int) -> Callable[..., dict] | None:
    """Adapt a (step, total) progress callback to diffusers' callback_on_step_end."""
    if on_step is None:
        return None

    def report(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        on_step(step + 1, total)
        return tensors

    return report
