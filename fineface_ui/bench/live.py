"""Live previews, measured: what a slider event costs, what a full render costs, what showing its
glimpses adds, and whether resuming the last full render's early latents makes a preview cheaper
without drifting from the full render. Measures, never asserts.

`python -m fineface_ui.bench --random-weights`: the tiny models of `app.py --random-weights`, on the CPU.
The GPU table (gpu_table.py) times renders and previews on the full-size pipeline itself.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from ..engine.previews import PREVIEW_STEPS, glimpse_steps
from ..settings import SPEC, GenerationSettings
from ..studio import Studio
from ..web import handlers
from ..web.rendering import Backend
from ..web.session import Session
from .motion import motion_rows
from .table import Row, as_sent, drag_values, median_ms

PROMPT = "a close-up photo of a woman in a park"


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two images' 8-bit pixels (0 = equal, 255 = opposite)."""
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).mean())


def page_values(size: int, steps: int) -> dict[str, Any]:
    values = {name: setting.default for name, setting in SPEC.items()}
    return {**values, **{name: 0.0 for name in handlers.AU_NAMES}, "prompt": PROMPT, "num_inference_steps": steps,
            "width": size, "height": size}


def latency_rows(backend: Backend, size: int, steps: int, repeats: int,
                 sync: Callable[[], None] = lambda: None) -> list[Row]:
    """Server-side latency of the page's handlers, each run with AU12 moved (drag_values)."""
    values = drag_values()

    def moved() -> dict[str, Any]:
        return {**page_values(size, steps), "AU12": next(values)}

    def settings() -> GenerationSettings:
        text, aus, options = handlers.split(moved())
        return GenerationSettings.create(text, aus, **options)

    preview = median_ms(lambda: as_sent(handlers.preview(backend, Session(), None, **moved())["value"]), repeats,
                        sync)
    plain = median_ms(lambda: backend.render(settings(), [], no_progress), repeats, sync)
    streamed = median_ms(lambda: list(backend.stream(settings(), [], no_progress, Session())), repeats, sync)
    page = median_ms(lambda: list(handlers.render(backend, Session(), None, True, False, no_progress, **moved())),
                     repeats, sync)
    return [
        (f"preview: slider value to JPEG ({min(PREVIEW_STEPS, steps)} dpm++ steps, TAESD), ms", preview, ""),
        (f"full render, no glimpses ({steps} steps, VAE), ms", plain, ""),
        ("full render showing its glimpses, ms", streamed,
         f"+{(streamed / plain - 1) * 100:.1f}% for {len(glimpse_steps(steps))} glimpses"),
        ("full render as the page runs it (glimpses, PNG with settings, history), ms", page, ""),
        ("preview / full render", preview / plain, ""),
    ]


def no_progress(*args: Any, **kwargs: Any) -> None:
    pass


def raw_latents(pipe: Any, settings: GenerationSettings, **diffusers_options: Any) -> torch.Tensor:
    """The pipeline's denoising loop with options of diffusers' that the app does not offer (custom start
    latents and timesteps): this experiment's alone, so it reaches into the pipeline's request setup."""
    positive, negative, _ = pipe._prompt_embeddings(settings.prompt, settings.negative_prompt)
    with pipe._request_terms(settings, None):
        pipe.sd.scheduler = pipe.schedulers[settings.scheduler]
        return pipe.sd(prompt_embeds=positive, negative_prompt_embeds=negative, guidance_scale=settings.guidance_scale,
                       height=settings.height, width=settings.width, output_type="latent",
                       generator=torch.Generator("cpu").manual_seed(settings.seed), **diffusers_options).images


def latents_after(pipe: Any, settings: GenerationSettings, step: int) -> torch.Tensor:
    """The latents of a full render of `settings` after `step` of its steps (the rest run, then dropped)."""
    kept: dict[str, torch.Tensor] = {}

    def keep(_: Any, index: int, timestep: Any, tensors: dict) -> dict:
        if index + 1 == step:
            kept["latents"] = tensors["latents"].clone()
        return tensors

    raw_latents(pipe, settings, num_inference_steps=settings.num_inference_steps, callback_on_step_end=keep)
    return kept["latents"]


def resumed(pipe: Any, settings: GenerationSettings, latents: torch.Tensor, after: int, steps: int) -> Image.Image:
    """A preview of `settings` from another render's latents after `after` of its steps: `steps` DPM-Solver++
    steps over the timesteps that render had left, then TAESD."""
    scheduler = pipe.schedulers["dpm++"]
    scheduler.set_timesteps(settings.num_inference_steps)
    remaining = scheduler.timesteps[after:].tolist()
    picked = [remaining[int(i)] for i in np.linspace(0, len(remaining) - 1, steps).round()]
    final = raw_latents(pipe, replace(settings, scheduler="dpm++"), timesteps=picked, latents=latents)
    return pipe.decode_quickly(final)[0]


def reuse_rows(pipe: Any, size: int, steps: int, repeats: int, sync: Callable[[], None] = lambda: None) -> list[Row]:
    """AU12 dragged from 1 to 3 after a full render at 1: previews from noise against previews resumed from
    that render's latents after a few steps. Each is compared with the full render at AU12=3, all decoded
    by TAESD, so that the difference is the denoising's, not the decoders'."""
    before = GenerationSettings.create(PROMPT, {"AU12": 1}, num_inference_steps=steps, width=size, height=size)
    after = replace(before, aus=({**before.aus[0], "AU12": 3.0},))
    final_latents = raw_latents(pipe, after, num_inference_steps=steps)
    full = pipe.decode_quickly(final_latents)[0]
    rows = [("the full render decoded by the VAE vs by TAESD: mean abs pixel diff (the decoders' share)",
             mean_abs_diff(pipe.generate(after).images[0], full), "")]
    for preview_steps in (4, 6, 8):
        fresh = replace(after, num_inference_steps=preview_steps)
        ms = median_ms(lambda: pipe.generate_preview(fresh), repeats, sync)
        rows.append((f"from noise, {preview_steps} steps, ms", ms,
                     f"mean abs pixel diff to the full render {mean_abs_diff(pipe.generate_preview(fresh)[0], full):.1f}"))
    for kept_step, preview_steps in ((3, 4), (5, 4), (5, 6), (8, 4)):
        latents = latents_after(pipe, before, kept_step)
        ms = median_ms(lambda: resumed(pipe, after, latents, kept_step, preview_steps), repeats, sync)
        difference = mean_abs_diff(resumed(pipe, after, latents, kept_step, preview_steps), full)
        rows.append((f"resumed after step {kept_step} of {steps}, {preview_steps} steps, ms", ms,
                     f"mean abs pixel diff to the full render {difference:.1f}"))
    return rows


def print_rows(title: str, rows: list[Row]) -> None:
    print(f"\n{title}\n| what | value | note |\n|---|---|---|")
    for what, value, note in rows:
        print(f"| {what} | {value:.2f} | {note} |", flush=True)


def main(repeats: int) -> None:
    """The CPU tables with the random-weight models: the page's defaults (512x512, 25 steps)."""
    studio = Studio.with_random_weights(tempfile.mkdtemp(prefix="fineface-bench-live-"))
    size, steps = SPEC["width"].default, SPEC["num_inference_steps"].default
    print(f"CPU, {torch.get_num_threads()} threads, tiny random-weight models (app.py --random-weights), "
          f"{size}x{size}, {steps} steps, fp32")
    print_rows("Live latency (server side: handlers and the models; not the network or the browser)",
               latency_rows(Backend(studio), size, steps, repeats))
    print_rows("Previews resumed from the last full render's latents vs from noise",
               reuse_rows(studio.text_pipeline(), size, steps, repeats))
    print_rows("Animation and upscale (bench/motion.py)", motion_rows(studio.text_pipeline(), size, steps))
