"""Fast stand-in images: the few-step preview shown while a slider is dragged, and the glimpses of a
full render's latents while it denoises. Both are decoded with TAESD (diffusers' AutoencoderTiny),
which turns SD 1.x/2.x latents into pixels at a fraction of the full VAE's cost.

A preview is never a result: it has no metadata, so it cannot be saved with settings, enter the
history or be downloaded as a PNG.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import torch
from diffusers import AutoencoderTiny
from PIL import Image

from ..settings import GenerationSettings

# DPM-Solver++ steps of a preview. The range was 6-8; 8 keeps the face's shape close to the
# full render while fitting the 100 ms budget on an H100 (8 x 6.6 ms compiled UNet steps, docs/benchmarks.md).
PREVIEW_STEPS = 8
PREVIEW_SCHEDULER = "dpm++"
# Glimpses of a full render's latents: about this many per render, whatever its step count.
GLIMPSES_PER_RENDER = 5

PreviewCallback = Callable[[list[Image.Image], int, int], None]  # (images, step, total steps)


def preview_settings(settings: GenerationSettings) -> GenerationSettings:
    """The preview of `settings`: everything the same (seed, so the starting noise, prompt, AUs, size),
    except fewer steps of the fast scheduler. A render asked for with fewer steps keeps its own."""
    return replace(settings, num_inference_steps=min(PREVIEW_STEPS, settings.num_inference_steps),
                   scheduler=PREVIEW_SCHEDULER)


@torch.no_grad()
def decode_preview(decoder: AutoencoderTiny, image_processor: Any, latents: torch.Tensor) -> list[Image.Image]:
    """TAESD's pictures of SD latents. TAESD reads the latents as the UNet sees them (its scaling factor
    is 1) and returns pixels in [-1, 1], as the full VAE does."""
    pixels = decoder.decode(latents.to(decoder.device, decoder.dtype)).sample
    return image_processor.postprocess(pixels.float(), output_type="pil")


def glimpse_steps(total: int) -> set[int]:
    """The steps (1-based) after which a full render shows its latents: evenly spaced, never the last,
    which the full VAE decodes anyway."""
    every = max(1, total // GLIMPSES_PER_RENDER)
    return set(range(every, total, every))


def glimpser(decode: Callable[[torch.Tensor], list[Image.Image]], on_preview: PreviewCallback | None,
             total: int) -> Callable[[torch.Tensor, int], None] | None:
    """A (latents, step) callback that shows `on_preview` the decoded latents at the glimpse steps."""
    if on_preview is None:
        return None
    shown_at = glimpse_steps(total)

    def glimpse(latents: torch.Tensor, step: int) -> None:
        if step in shown_at:
            on_preview(decode(latents), step, total)

    return glimpse
