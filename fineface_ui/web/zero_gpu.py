"""ZeroGPU, the shared GPUs of Hugging Face Spaces: the one function that runs the models asks for a
GPU for about as long as its request needs (a shorter request waits less in ZeroGPU's queue).

Outside ZeroGPU `spaces.GPU` returns the function unchanged, and without the `spaces` package
nothing is wrapped at all.
"""

from __future__ import annotations

import math
from typing import Any, Callable, TypeVar

try:  # imported early on purpose: on ZeroGPU it must patch torch before CUDA is touched
    import spaces
except ImportError:
    spaces = None

Function = TypeVar("Function", bound=Callable[..., Any])

# Eager fp16 on an H100 (docs/benchmarks.md): about 46 ms per guided step at 512x512, i.e. 0.18 s
# per step and megapixel; doubled for a slower GPU slice, plus the transfer of the models to it.
SECONDS_PER_STEP_MEGAPIXEL = 0.36
START_SECONDS = 15
MAX_SECONDS = 300


def estimated_seconds(studio: Any, settings: Any, *args: Any, upscale: Any = None, **kwargs: Any) -> int:
    """GPU time to ask for a call of Studio.generate(settings, ...): steps x images x size; for
    Studio.upscale(settings, ..., upscale=...) the steps that run at the upscaled size."""
    megapixels = settings.width * settings.height / 1e6
    steps = settings.num_inference_steps
    if upscale is not None:
        megapixels *= upscale.scale ** 2
        steps = upscale.steps(steps)
    work = steps * len(settings.aus) * megapixels
    return min(MAX_SECONDS, math.ceil(START_SECONDS + SECONDS_PER_STEP_MEGAPIXEL * work))


def edit_seconds(studio: Any, photo: Any, settings: Any, *args: Any, **kwargs: Any) -> int:
    """GPU time to ask for a photo edit (Studio.edit(photo, settings, ...)): MagicFace's 512 px crop, whose steps
    cost about a 512 px image's, plus one pass of its ID UNet."""
    work = (settings.num_inference_steps + 1) * (512 * 512 / 1e6)
    return min(MAX_SECONDS, math.ceil(START_SECONDS + SECONDS_PER_STEP_MEGAPIXEL * work))


def on_gpu(function: Function, duration: Callable[..., int] = estimated_seconds) -> Function:
    """`function` wrapped with spaces.GPU (asking for `duration(*its arguments)` seconds) when `spaces` is
    installed."""
    if spaces is None:
        return function
    return spaces.GPU(duration=duration)(function)
