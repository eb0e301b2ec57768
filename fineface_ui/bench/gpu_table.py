"""The full-size GPU table: `python -m fineface_ui.bench --device cuda --full-size`.

Random weights in the real SD 2.1-base and SD 1.5 architectures (standins/full_size.py), 512x512, 25 steps.
Prints, in one run: fp16 correctness against fp32, per-step UNet times of diffusers' plain UNet,
ours and the literal paper Eq. 2 under each speed option, end-to-end latency (p50/p90), the
warm-up and first image, the identity pipeline, peak memory with both loaded, and an out-of-memory
request followed by a normal one. Measures, never asserts.
"""

from __future__ import annotations

import gc
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..aus import AU_NAMES
from ..engine.acceleration import Acceleration
from ..errors import GPUMemoryError
from ..standins import full_size
from .components import step_table, vae_table
from .table import p50_p90, row, section, timed_ms

PROMPT = "a close-up of a woman in a park"
RENDER = {"seed": 7, "num_inference_steps": 25, "height": 512, "width": 512}
CASES = {"all AUs 0": {}, "AU12=5": {"AU12": 5}, "AU12=-5": {"AU12": -5}, "AU26=15": {"AU26": 15},
         "all twelve at 10": dict.fromkeys(AU_NAMES, 10)}


def render_tensors(pipe: Any, aus: Any, **options: Any) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Final latents, decoded image tensor and 8-bit pixels of one render (read with module hooks)."""
    seen: dict[str, torch.Tensor] = {}
    vae = pipe.sd.vae
    hooks = [vae.post_quant_conv.register_forward_pre_hook(lambda m, a: seen.__setitem__("latents", a[0].float())),
             vae.decoder.register_forward_hook(lambda m, a, out: seen.__setitem__("image", out.float()))]
    try:
        image = pipe(PROMPT, aus, **{**RENDER, **options}, face_embeds=getattr(pipe, "bench_face", None)).images[0]
    finally:
        for hook in hooks:
            hook.remove()
    return seen["latents"], seen["image"], np.asarray(image, dtype=np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@contextmanager
def full_precision() -> Iterator[None]:
    """fp32 without TF32 shortcuts: the reference the fp16 images are compared with."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def one_step(pipe: Any) -> torch.Tensor:
    """The UNet's noise prediction for fixed inputs (AU12=5 with guidance), in fp32."""
    generator = torch.Generator().manual_seed(3)
    latents = torch.randn(2, 4, 64, 64, generator=generator).to("cuda", pipe.dtype)
    text = torch.randn(2, 77, pipe.sd.unet.config.cross_attention_dim, generator=generator).to("cuda", pipe.dtype)
    au_tokens = pipe._au_tokens([{"AU12": 5}], guided=True)
    for adapter in pipe.adapters.values():
        adapter.begin_request(au_tokens, 1.0)
    noise = pipe.sd.unet(latents, torch.tensor(500, device="cuda"), encoder_hidden_states=text).sample
    return noise.float()


def fp16_against_fp32(build: Callable[[str, torch.dtype], Any], face: torch.Tensor | None) -> Any:
    pipe = build("cuda", torch.float32)
    pipe.bench_face = face
    with full_precision():
        references = {name: render_tensors(pipe, case) for name, case in CASES.items()}
        reference_step_output = one_step(pipe)
    pipe.to(torch.device("cuda"), torch.float16)
    step_error = (one_step(pipe) - reference_step_output).norm() / reference_step_output.norm()
    row("one UNet step, fp16 vs fp32: relative error |d| / |ref|", f"{float(step_error):.2e}")
    print()
    row("AUs", "finite latents", "finite image", "latents fp16 vs fp32: max abs / relative", "image PSNR dB", "ms")
    row("---", "---", "---", "---", "---", "---")
    for name, case in CASES.items():
        start = time.perf_counter()  # the first of these is the first fp16 image after start, eager
        latents, image, pixels = render_tensors(pipe, case)
        ref_latents, _, ref_pixels = references[name]
        difference = latents - ref_latents
        row(name, bool(torch.isfinite(latents).all()), bool(torch.isfinite(image).all()),
            f"{float(difference.abs().max()):.3f} / {float(difference.norm() / ref_latents.norm()):.1e}",
            psnr(pixels, ref_pixels), (time.perf_counter() - start) * 1000)
    return pipe


def end_to_end(pipe: Any, label: str, runs: int = 20) -> np.ndarray:
    """Warm latency of renders where only the AUs change between runs, as when a slider moves."""
    face = getattr(pipe, "bench_face", None)
    values = iter(np.linspace(-2, 8, runs + 2))
    times = timed_ms(lambda: pipe(PROMPT, {"AU12": float(next(values))}, **RENDER, face_embeds=face), runs)
    row(f"{label}: end-to-end 512x512, 25 steps (p50 / p90), ms", *p50_p90(times))
    return render_tensors(pipe, {"AU12": 5})[2]


def accelerate_and_compare(pipe: Any, label: str, eager_pixels: np.ndarray) -> None:
    start = time.perf_counter()
    pipe.accelerate(Acceleration.default_for(torch.device("cuda")))
    row(f"{label}: warm-up at start-up (compile + capture, default options), s", time.perf_counter() - start)
    first = timed_ms(lambda: pipe(PROMPT, {"AU6": 2}, **RENDER, face_embeds=pipe.bench_face), 1, warm_ups=0)[0]
    row(f"{label}: first image after warm-up, ms", first)
    fast_pixels = end_to_end(pipe, f"{label}, accelerated")
    row(f"{label}: accelerated vs eager at AU12=5: max pixel diff / PSNR dB",
        f"{np.abs(fast_pixels - eager_pixels).max():.0f} / {psnr(fast_pixels, eager_pixels):.1f}")
    # The web app renders from Gradio's worker threads, not the thread that warmed up.
    other: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: other.append(render_tensors(pipe, {"AU12": 5})[2]))
    worker.start()
    worker.join()
    row(f"{label}: same render from another thread: max pixel diff", f"{np.abs(other[0] - fast_pixels).max():.0f}")


@section("fp16 correctness and latency: SD 2.1-base text + AUs")
def text_part() -> Any:
    pipe = fp16_against_fp32(full_size.text_pipeline, None)
    print()
    accelerate_and_compare(pipe, "SD 2.1", end_to_end(pipe, "SD 2.1, eager"))
    return pipe


@section("Live previews: SD 2.1-base, accelerated, 512x512 (bench/live.py)")
def live_part(pipe: Any) -> None:
    from .live import pipeline_rows, reuse_rows

    for what, value, note in [*pipeline_rows(pipe, 512, 25, 20, torch.cuda.synchronize),
                              *reuse_rows(pipe, 512, 25, 10, torch.cuda.synchronize)]:
        row(what, value, note)


@section("Animation and upscale: SD 2.1-base, accelerated, 512x512 (bench/motion.py)")
def motion_part(pipe: Any) -> None:
    from .motion import motion_rows

    for what, value, note in motion_rows(pipe, 512, 25, torch.cuda.synchronize):
        row(what, value, note)


@section("SD 2.1-base with channels-last + CUDA graphs, no compile (the command line's default)")
def graphs_only_part() -> None:
    pipe = full_size.text_pipeline("cuda", torch.float16)
    pipe.bench_face = None
    start = time.perf_counter()
    pipe.accelerate(Acceleration(channels_last=True, cuda_graphs=True))
    row("warm-up (capture), s", time.perf_counter() - start)
    end_to_end(pipe, "SD 2.1, channels-last + CUDA graphs")


@section("fp16 correctness and latency: SD 1.5 identity (one face)")
def identity_part() -> Any:
    pipe = fp16_against_fp32(full_size.identity_pipeline, full_size.face_embedding())
    print()
    accelerate_and_compare(pipe, "SD 1.5 + face", end_to_end(pipe, "SD 1.5 + face, eager"))
    return pipe


@section("Memory with both pipelines loaded, and an out-of-memory request")
def memory_part(text: Any, identity: Any) -> None:
    gc.collect()  # the pipelines of earlier parts hold their graphs through reference cycles
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    text(PROMPT, {"AU12": 3}, **RENDER)
    identity(PROMPT, {"AU12": 3}, **RENDER, face_embeds=identity.bench_face)
    row("allocated at rest / peak during renders / reserved, GiB",
        f"{torch.cuda.memory_allocated() / 2**30:.2f} / {torch.cuda.max_memory_allocated() / 2**30:.2f} / "
        f"{torch.cuda.memory_reserved() / 2**30:.2f}")
    # A smaller card, simulated: 2 GiB above what is held now.
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_reserved() + 2 * 2**30) / total)
    try:
        try:
            text(PROMPT, [{"AU12": v} for v in range(16)], **{**RENDER, "height": 1024, "width": 1024})
            row("16 images at 1024x1024 under a 2 GiB margin", "did not run out of memory")
        except GPUMemoryError as error:
            row("16 images at 1024x1024 under a 2 GiB margin", f"GPUMemoryError: {error}")
        image = text(PROMPT, {"AU12": 4}, **RENDER).images[0]
        row("next request, 512x512", f"ok, {image.size[0]}x{image.size[1]}")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)


def main() -> None:
    import diffusers
    import transformers

    print(f"# {torch.cuda.get_device_name(0)}; torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"transformers {transformers.__version__}")
    print("command: python -m fineface_ui.bench --device cuda --full-size")
    started = time.perf_counter()
    with torch.no_grad():
        text = text_part()
        if text is not None:
            live_part(text)
            motion_part(text)
        graphs_only_part()
        identity = identity_part()
        if text is not None and identity is not None:
            memory_part(text, identity)
        del text, identity
        torch.cuda.empty_cache()
        step_table()
        vae_table()
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s")
