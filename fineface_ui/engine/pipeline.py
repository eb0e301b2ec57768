"""FineFacePipeline: Stable Diffusion with the FineFace AU adapter, in either variant (variants.py).

The data path, top to bottom: settings -> prompt embeddings (cached) -> AU tokens (and identity
tokens when a face is given) -> per-layer adapter terms (once per request) -> diffusers' denoising
loop -> images + metadata.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from diffusers import AutoencoderTiny, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
from PIL import Image

from ..aus import AUValues, au_vector
from ..errors import GPUMemoryError, InvalidInputError
from ..hub.weights import resolve
from ..keyframes import DEFAULT_EASING, DEFAULT_FPS, Motion
from ..settings import GenerationSettings, Upscale
from .acceleration import Acceleration, WarmedForward, accelerate, warming
from .attention import FineFaceAttnProcessor, request_addresses
from .au_encoder import AUEncoder
from .denoising import IMAGES_PER_BATCH, StepCallback, build_schedulers, in_batches, step_reporter
from .identity_adapter import FACE_EMBEDDING_DIM, IdentityAdapter
from .image_metadata import image_metadata, tokens_dropped
from .loading import (
    cast_components,
    default_device_and_dtype,
    load_au_adapter,
    load_base_pipeline,
    load_preview_decoder,
    models_loaded,
)
from .lora import TRAINED_LORA_SCALE, FusedLora
from .previews import PreviewCallback, decode_preview, glimpser, preview_settings
from .variants import SD21_TEXT, VARIANTS, Variant, variant_named

log = logging.getLogger(__name__)

PROMPT_CACHE_SIZE = 32


@dataclass
class FineFaceOutput:
    images: list[Image.Image]
    metadata: dict[str, Any]  # every setting, model and library version; `aus` has one entry per image

    def metadata_for(self, index: int) -> dict[str, Any]:
        """The metadata that reproduces image `index` alone."""
        return {**self.metadata, "aus": [self.metadata["aus"][index]]}


class FineFacePipeline:
    """FineFace on Stable Diffusion, as `variant` describes it. Call it like a diffusers pipeline."""

    def __init__(self, sd: StableDiffusionPipeline, au_encoder: AUEncoder, adapters: dict[str, FineFaceAttnProcessor],
                 *, variant: Variant, models: dict[str, dict[str, str]], preview_decoder: AutoencoderTiny,
                 lora: FusedLora | None = None, identity: IdentityAdapter | None = None) -> None:
        self.sd = sd
        self.au_encoder = au_encoder
        self.adapters = adapters
        self.variant = variant
        self.models = models  # per model variable: the repo id and revision it was loaded from
        self.lora = lora  # None: this variant has no LoRA
        self.identity = identity  # None: this variant takes no face
        self.preview_decoder = preview_decoder  # TAESD: decodes few-step previews in milliseconds
        # Upscaling's image-to-image pass: diffusers' own, on the very same modules (adapters included).
        self.img2img = StableDiffusionImg2ImgPipeline.from_pipe(sd)
        self.img2img.set_progress_bar_config(disable=True)  # progress goes through on_step, as for `sd`
        self.schedulers = build_schedulers(sd.scheduler)
        # (prompt, negative prompt) -> their embeddings and how many tokens of each CLIP cut off
        self._prompt_cache: OrderedDict[tuple[str, str], tuple] = OrderedDict()
        # One denoising loop at a time: the adapters hold the running request's terms.
        self._lock = threading.Lock()
        self._fast: list[WarmedForward] = []  # routed UNet/VAE forwards (acceleration.py), empty when off
        self.images_per_batch = IMAGES_PER_BATCH  # longer AU lists run as several denoising loops

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
        *,
        variant: Variant | str = SD21_TEXT,
        ip_adapter_weights: str | Path | None = None,
        vae: str | Path | None = None,
        preview_decoder: str | Path | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        lora_scale: float | None = None,
        allow_download: bool = True,
        acceleration: Acceleration | None = None,
    ) -> "FineFacePipeline":
        """Load a variant ("sd21", the default, or "sd15-identity"; see variants.py) from Hub repo ids or
        local folders; a source the variant does not load is a ValueError.

        `lora_scale` (default: the trained 0.25) applies to variants with a LoRA; the others ignore it.
        `acceleration` defaults to what wins on the device (Acceleration.default_for); on CUDA that
        includes a warm-up compile of a minute or two, done here rather than in the first request.
        """
        variant = variant_named(variant)
        device, dtype = default_device_and_dtype(device, dtype)
        needed = variant.files(base_model=base_model, fineface_weights=fineface_weights,
                               ip_adapter_weights=ip_adapter_weights, vae=vae, preview_decoder=preview_decoder)
        found = resolve(needed.values(), allow_download)
        paths = {role: found[weight] for role, weight in needed.items()}
        sd = load_base_pipeline(paths["base_model"], dtype, paths["vae"] if variant.separate_vae else None)
        au_encoder, adapters = load_au_adapter(sd.unet, variant, paths["au_encoder"], paths["au_adapter"])
        lora_scale = TRAINED_LORA_SCALE if lora_scale is None else lora_scale
        lora = FusedLora(sd.unet, paths["lora"], lora_scale) if variant.lora else None
        identity = IdentityAdapter.load(paths["ip_adapter"], sd.unet, adapters) if variant.identity_adapter else None
        pipe = cls(sd, au_encoder, adapters, variant=variant, models=models_loaded(needed, found), lora=lora,
                   identity=identity, preview_decoder=load_preview_decoder(paths["preview_decoder"], dtype))
        return pipe.to(device, dtype).accelerate(acceleration)

    def to(self, device: torch.device, dtype: torch.dtype) -> "FineFacePipeline":
        """Move and cast everything (fast paths are dropped: they hold the old weights' addresses)."""
        cast_components([*self.sd.components.values(), self.preview_decoder], device, dtype)
        self.au_encoder.to(device, dtype)
        for adapter in self.adapters.values():
            adapter.to(device, dtype)
            adapter.unpin_request_tensors()
        if self.identity is not None:
            self.identity.to(device, dtype)
        for forward in self._fast:
            forward.forget()
        self._prompt_cache.clear()
        return self

    def accelerate(self, acceleration: Acceleration | None = None) -> "FineFacePipeline":
        """Apply speed options (default: what wins on this device) and warm them up; see acceleration.py."""
        if self._fast:
            raise RuntimeError("speed options are applied once, when the pipeline is loaded")
        acceleration = acceleration or Acceleration.default_for(self.device)
        self._fast = accelerate(self.sd.unet, [self.sd.vae, self.preview_decoder], acceleration,
                                lambda: request_addresses(self.adapters.values()))
        if acceleration.needs_warm_up:
            log.info("Warming up %s (%s): compiling for 512x512, one image; takes a minute or two once.",
                     self.variant.name, acceleration)
            log.info("Warm-up done in %.1f s.", self.warm_up())
        return self

    def warm_up(self) -> float:
        """Build the fast paths for the default layout (512x512, one image, one face photo when the
        variant takes faces), the preview's TAESD decode included; returns the seconds it took."""
        faces = torch.zeros(1, FACE_EMBEDDING_DIM) if self.identity is not None else None
        settings = GenerationSettings.create("", None, num_inference_steps=2)
        start = time.perf_counter()
        with warming(self._fast):
            self.generate(settings, face_embeds=faces)
            self.generate_preview(settings, face_embeds=faces)
        return time.perf_counter() - start

    # ---- generation ----------------------------------------------------------------------------

    def __call__(self, prompt: str, aus: AUValues | Sequence[AUValues] | None = None, *, face_embeds: Any = None,
                 on_step: StepCallback | None = None, on_preview: PreviewCallback | None = None,
                 **options: Any) -> FineFaceOutput:
        """One image per AU setting (a dict, list of 12, 'AU12=3' string, or a list of these).

        `face_embeds` (FaceEmbedder.embed()'s result) needs a variant with the identity adapter;
        `on_preview(images, step, total)` is shown the images as they form (see generate).
        """
        return self.generate(GenerationSettings.create(prompt, aus, **options), on_step, face_embeds, on_preview)

    def animate(self, prompt: str, keys: str, *, seconds: float | None = None, fps: int = DEFAULT_FPS,
                easing: str = DEFAULT_EASING, face_embeds: Any = None, on_step: StepCallback | None = None,
                **options: Any) -> FineFaceOutput:
        """The frames of a keyframed motion (`keys` such as "0:neutral; 1:AU12=4", see keyframes.Motion), every
        frame with the same seed and starting noise; video.write_mp4 makes them a video. All frames come back
        at once: animation.render_frames renders long motions in bounded memory."""
        motion = Motion.create(keys, seconds, fps, easing)
        settings = GenerationSettings.create(prompt, None, **options)
        output = self.generate(replace(settings, aus=tuple(motion.frame_aus())), on_step, face_embeds)
        output.metadata["animation"] = motion.as_dict()
        return output

    def preview(self, prompt: str, aus: AUValues | Sequence[AUValues] | None = None, *, face_embeds: Any = None,
                **options: Any) -> list[Image.Image]:
        """Quick, rough images of these settings (previews.py); no metadata: a preview is not a result."""
        return self.generate_preview(GenerationSettings.create(prompt, aus, **options), face_embeds)

    @torch.no_grad()
    def generate(self, settings: GenerationSettings, on_step: StepCallback | None = None, face_embeds: Any = None,
                 on_preview: PreviewCallback | None = None) -> FineFaceOutput:
        """Run validated settings; every image shares the seed, so only the expression differs.

        `face_embeds` is FaceEmbedder.embed()'s result or its (n_faces, 512) tensor. `on_preview` is
        shown TAESD pictures of the images a few times while they denoise.
        """
        images, dropped = self._images(settings, face_embeds, on_step, on_preview)
        return FineFaceOutput(images=images, metadata=image_metadata(self, settings, face_embeds, dropped))

    @torch.no_grad()
    def generate_preview(self, settings: GenerationSettings, face_embeds: Any = None) -> list[Image.Image]:
        """The preview of validated settings: the same seed and starting noise, fewer steps, TAESD's decode."""
        return self._images(preview_settings(settings), face_embeds, quick_decode=True)[0]

    def _images(self, settings: GenerationSettings, face_embeds: Any, on_step: StepCallback | None = None,
                on_preview: PreviewCallback | None = None, quick_decode: bool = False) -> tuple[list[Image.Image], dict]:
        """The images of `settings` in batches, and the tokens CLIP cut from the prompts."""
        face_embeds = getattr(face_embeds, "embeddings", face_embeds)
        with self._lock:
            *prompts, dropped = self._prepare(settings)
            steps = settings.num_inference_steps
            total = steps * math.ceil(len(settings.aus) / self.images_per_batch)
            glimpses = glimpser(self.decode_quickly, on_preview, steps)
            images: list[Image.Image] = []
            for index, batch in in_batches(settings, self.images_per_batch):
                report = step_reporter(on_step, total, index * steps, glimpses)
                images += self._run_batch(batch, face_embeds, prompts, report, quick_decode)
        return images, dropped

    @torch.no_grad()
    def upscale(self, image: Image.Image, settings: GenerationSettings, face_embeds: Any = None,
                upscale: Upscale = Upscale(), on_step: StepCallback | None = None) -> FineFaceOutput:
        """`image` (made with `settings`, one AU setting) larger by `upscale.scale`, then redrawn at that size
        by an image-to-image pass with the same prompt, AUs, identity and seed: the last `upscale.strength`
        of the denoising schedule adds the detail the small image lacks and keeps the face."""
        if len(settings.aus) != 1:
            raise InvalidInputError(f"An upscale redraws one image: give one AU setting, not {len(settings.aus)}.")
        if image.size != (settings.width, settings.height):  # another picture would get these settings' face
            raise InvalidInputError(f"The image is {image.width}x{image.height}, but its settings make "
                                    f"{settings.width}x{settings.height} images: upscale the image they made.")
        steps = upscale.steps(settings.num_inference_steps)
        width, height = upscale.size(*image.size)
        larger = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
        face_embeds = getattr(face_embeds, "embeddings", face_embeds)
        with self._lock:
            positive, negative, dropped = self._prepare(settings)
            with self._request_terms(settings, face_embeds), readable_memory_errors():
                self.img2img.scheduler = self.schedulers[settings.scheduler]
                images = self.img2img(
                    image=larger,
                    strength=upscale.strength,
                    prompt_embeds=positive,
                    negative_prompt_embeds=negative,
                    num_inference_steps=settings.num_inference_steps,
                    guidance_scale=settings.guidance_scale,
                    generator=[torch.Generator("cpu").manual_seed(settings.seed)],
                    callback_on_step_end=step_reporter(on_step, steps),
                ).images
        metadata = image_metadata(self, settings, face_embeds, dropped)
        metadata["upscale"] = {**asdict(upscale), "width": width, "height": height}
        return FineFaceOutput(images=images, metadata=metadata)

    def _prepare(self, settings: GenerationSettings) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Under the lock, before denoising: the LoRA at the strength asked for, and the prompts' embeddings
        with the tokens CLIP cut from them."""
        if self.lora is not None and settings.lora_scale is not None and settings.lora_scale != self.lora.scale:
            self.lora.set_scale(settings.lora_scale)
        return self._prompt_embeddings(settings.prompt, settings.negative_prompt)

    def decode_quickly(self, latents: torch.Tensor) -> list[Image.Image]:
        """Latents as pictures through TAESD: rough, in a fraction of the full VAE's time."""
        return decode_preview(self.preview_decoder, self.sd.image_processor, latents)

    def _run_batch(self, settings: GenerationSettings, face_embeds: torch.Tensor | None,
                   prompts: tuple[torch.Tensor, torch.Tensor], report: Callable[..., dict] | None,
                   quick_decode: bool) -> list[Image.Image]:
        """One denoising loop over all of `settings`' images, with their adapter terms set for its duration."""
        with self._request_terms(settings, face_embeds):
            if quick_decode:
                return self.decode_quickly(self._denoise(settings, *prompts, report, output_type="latent"))
            return self._denoise(settings, *prompts, report)

    def _prompt_embeddings(self, prompt: str, negative_prompt: str) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """CLIP embeddings of the prompt and the negative prompt, and the tokens CLIP cut from each; kept,
        so that a slider move skips the tokenizer and the text encoder."""
        key = (prompt, negative_prompt)
        if key not in self._prompt_cache:
            positive, negative = self.sd.encode_prompt(prompt, self.device, 1, True, negative_prompt)
            dropped = tokens_dropped(self.sd.tokenizer, prompt, negative_prompt)
            self._prompt_cache[key] = (positive, negative, dropped)
            if len(self._prompt_cache) > PROMPT_CACHE_SIZE:
                self._prompt_cache.popitem(last=False)
        self._prompt_cache.move_to_end(key)
        return self._prompt_cache[key]

    @contextmanager
    def _request_terms(self, settings: GenerationSettings, face_embeds: torch.Tensor | None) -> Iterator[None]:
        """Every FineFace layer holds this request's adapter terms, in the UNet's batch order, for the block."""
        count = len(settings.aus)
        # diffusers runs classifier-free guidance under exactly this condition, batch [uncond, cond].
        guided = settings.guidance_scale > 1
        au_tokens = self._au_tokens(settings.aus, guided)
        identity_tokens = self._identity_tokens(face_embeds, count, guided)
        for adapter in self.adapters.values():
            adapter.begin_request(au_tokens, settings.au_scale, identity_tokens, settings.ip_scale)
            if any(forward.warming for forward in self._fast):
                adapter.pin_request_tensors()  # the graphs captured now will read these tensors
        try:
            yield
        finally:
            for adapter in self.adapters.values():
                adapter.end_request()

    def _au_tokens(self, aus: Sequence[dict[str, float]], guided: bool) -> torch.Tensor:
        """AU tokens in the UNet's batch order; the unconditional half is the all-zero AU vector's token."""
        values = torch.tensor([au_vector(item) for item in aus], device=self.device, dtype=self.dtype)
        if guided:
            values = torch.cat([torch.zeros_like(values), values])
        return self.au_encoder(values)

    def _identity_tokens(self, face_embeds: torch.Tensor | None, count: int, guided: bool) -> torch.Tensor | None:
        """The faces' identity tokens for the batch, or None without faces."""
        if face_embeds is None:
            return None
        if self.identity is None:
            with_faces = " or ".join(repr(v.name) for v in VARIANTS.values() if v.identity_adapter)
            raise InvalidInputError(f"The {self.variant.name} pipeline has no identity adapter: for faces, "
                                    f"load FineFacePipeline.from_pretrained(variant={with_faces}).")
        return self.identity.tokens(face_embeds, count, guided)

    def _denoise(self, settings: GenerationSettings, positive: torch.Tensor, negative: torch.Tensor,
                 report: Callable[..., dict] | None, output_type: str = "pil") -> Any:
        """diffusers' denoising loop and decode (none for output_type "latent")."""
        count = len(settings.aus)
        with readable_memory_errors():
            self.sd.scheduler = self.schedulers[settings.scheduler]
            return self.sd(
                prompt_embeds=positive,
                negative_prompt_embeds=negative,
                num_images_per_prompt=count,
                num_inference_steps=settings.num_inference_steps,
                guidance_scale=settings.guidance_scale,
                height=settings.height,
                width=settings.width,
                # One CPU generator per image, all with the same seed: identical starting noise on any device.
                generator=[torch.Generator("cpu").manual_seed(settings.seed) for _ in range(count)],
                callback_on_step_end=report,
                output_type=output_type,
            ).images


@contextmanager
def readable_memory_errors() -> Iterator[None]:
    """Out of GPU memory in a denoising loop becomes a GPUMemoryError, whose message says what to try."""
    try:
        yield
    except torch.OutOfMemoryError:
        log.warning("out of GPU memory", exc_info=True)
        torch.cuda.empty_cache()
        raise GPUMemoryError(GPUMemoryError.MESSAGE) from None
