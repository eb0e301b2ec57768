"""Helpers around diffusers' denoising loop: the schedulers offered, batching, and progress reports."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterator

import torch
from diffusers import DPMSolverMultistepScheduler

from ..settings import GenerationSettings

StepCallback = Callable[[int, int], None]
# Images per denoising loop. A 32-frame sweep in one loop is a UNet batch of 64 (with guidance): its
# activations can exceed GPU memory, and the larger batch is no faster once the GPU is busy.
IMAGES_PER_BATCH = 8


def build_schedulers(base_scheduler: Any) -> dict[str, Any]:
    """'paper': the base model's own scheduler; 'dpm++': DPM-Solver++ 2M from the same noise schedule."""
    return {
        "paper": base_scheduler,
        "dpm++": DPMSolverMultistepScheduler.from_config(base_scheduler.config, algorithm_type="dpmsolver++"),
    }


def in_batches(settings: GenerationSettings, size: int) -> Iterator[tuple[int, GenerationSettings]]:
    """(batch index, settings for at most `size` of the images) in order. Every image has its own
    generator seeded alike, so an image's pixels do not depend on the batch it lands in."""
    for index, start in enumerate(range(0, len(settings.aus), size)):
        yield index, replace(settings, aus=settings.aus[start:start + size])


def step_reporter(on_step: StepCallback | None, total: int, done: int = 0,
                  on_latents: Callable[[torch.Tensor, int], None] | None = None) -> Callable[..., dict] | None:
    """Adapt a (step, total) progress callback and a (latents, step of this loop) one to diffusers'
    callback_on_step_end; `done` steps of earlier batches come first, so the bar runs once over all batches."""
    if on_step is None and on_latents is None:
        return None

    def report(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        if on_step is not None:
            on_step(done + step + 1, total)
        if on_latents is not None:
            on_latents(tensors["latents"], step + 1)
        return tensors

    return report
