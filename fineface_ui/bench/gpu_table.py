"""The full-size GPU table: `python -m fineface_ui.bench --device cuda --full-size [--parts ...]`.

Random weights in the real SD 2.1-base, SD 1.5 and MagicFace architectures (standins/full_size.py), fp16,
512x512, 25 steps, the app's speed options. The default parts fit one short GPU lease (about 6 minutes on
an H100/H200): start-up with and without the compile cache, renders and slider previews (p50/p90) with
each new speed option side by side, where a render's time goes, then the capabilities that run on the GPU
(animation, upscale, AU reading, a photo edit, evaluation). `--parts fp16 components` adds the earlier
rounds' tables: fp16 against fp32, the identity pipeline, memory and out of memory; per-step UNet and VAE
times under each option. `--tiny` runs the default parts with the tiny test models on the CPU, to try
the script before a GPU run. Measures, never asserts.
"""

from __future__ import annotations

import gc
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from ..aus import AU_NAMES
from ..engine.acceleration import Acceleration, WarmedForward
from ..errors import GPUMemoryError
from ..settings import GenerationSettings
from ..standins import full_size
from .components import step_table, vae_table
from .startup import app_acceleration, startup_rows, text_pipeline
from .table import as_sent, drag_values, p50_p90, row, section, timed_ms

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


@dataclass
class Target:
    """Where the table runs: the full-size models on CUDA, or (`tiny`) the test models on the CPU."""
    tiny: bool
    folder: Path

    size = 512  # the layout the app warms up: smaller images would run eagerly

    @property
    def steps(self) -> int:
        return 4 if self.tiny else 25

    @property
    def repeats(self) -> int:
        return 3 if self.tiny else 20

    def sync(self) -> None:
        if not self.tiny:
            torch.cuda.synchronize()

    def acceleration(self) -> Acceleration:
        return app_acceleration(self.tiny)

    def text_pipeline(self, acceleration: Acceleration, compiled_before: str) -> Any:
        """The SD 2.1 pipeline with `acceleration`, warmed up; `compiled_before` says what the compile cache
        already held for it."""
        pipe = text_pipeline(self.tiny, Path(tempfile.mkdtemp(dir=self.folder)))
        start = time.perf_counter()
        pipe.accelerate(acceleration)
        row(f"warm-up ({acceleration}), s", time.perf_counter() - start, compiled_before)
        return pipe

    def settings(self) -> Callable[[], GenerationSettings]:
        """Settings as a slider drag sends them: a new AU12 each time, all else the page's defaults."""
        values = drag_values()
        return lambda: GenerationSettings.create(PROMPT, {"AU12": next(values)}, num_inference_steps=self.steps,
                                                 width=self.size, height=self.size)


def latency_rows(pipe: Any, target: Target, label: str) -> None:
    """Render and preview p50/p90: the server's side of a drag, slider value in, picture out."""
    settings = target.settings()
    renders = timed_ms(lambda: pipe.generate(settings()), target.repeats, sync=target.sync)
    previews = timed_ms(lambda: as_sent(pipe.generate_preview(settings())[0]), target.repeats, sync=target.sync)
    row(f"{label}: render, {target.steps} steps (p50 / p90), ms", *p50_p90(renders))
    row(f"{label}: preview, value in, JPEG out (p50 / p90), ms", *p50_p90(previews))


@contextmanager
def timed_forward(module: Any, spent: dict[str, float], name: str, sync: Callable[[], None]) -> Iterator[None]:
    """Adds the time of each call of `module` (waited for) to spent[name]."""
    forward = module.forward

    def timed(*args: Any, **kwargs: Any) -> Any:
        sync()
        start = time.perf_counter()
        result = forward(*args, **kwargs)
        sync()
        spent[name] += (time.perf_counter() - start) * 1000
        return result

    module.forward = timed
    try:
        yield
    finally:
        module.forward = forward


def where_the_time_goes(pipe: Any, target: Target) -> None:
    """One render split into its UNet steps, its VAE decode and the rest (scheduler, guidance, AU terms, the
    conversion to a picture). Waiting after each call adds a little to the whole."""
    settings = target.settings()
    pipe.generate(settings())
    spent = {"UNet": 0.0, "VAE": 0.0}
    with timed_forward(pipe.sd.unet, spent, "UNet", target.sync), \
            timed_forward(pipe.sd.vae.decoder, spent, "VAE", target.sync):
        whole = timed_ms(lambda: pipe.generate(settings()), 1, warm_ups=0, sync=target.sync)[0]
    rest = whole - spent["UNet"] - spent["VAE"]
    row("one render: whole / UNet (per step) / VAE decode / the rest, ms",
        f"{whole:.1f} / {spent['UNet']:.1f} ({spent['UNet'] / target.steps:.2f}) / {spent['VAE']:.1f} / {rest:.1f}")


@section("Start-up: a new process from launch to its first image, SD 2.1-base (bench/startup.py)")
def startup_part(target: Target) -> None:
    for what, value, note in startup_rows(Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]), target.tiny):
        row(what, value, note)


@section("Renders and previews: SD 2.1-base, the app's speed options, each new one side by side")
def text_part(target: Target) -> Any:
    pipe = target.text_pipeline(target.acceleration(), "the start-up part compiled these graphs (when it ran)")
    latency_rows(pipe, target, "all options")
    taesd = pipe.preview_decoder.decoder.forward
    if isinstance(taesd, WarmedForward):  # the same pipeline with TAESD eager: forget its fast path a while
        kept = dict(taesd.runners)
        taesd.runners.clear()
        previews = timed_ms(lambda: as_sent(pipe.generate_preview(target.settings()())[0]), target.repeats,
                            sync=target.sync)
        taesd.runners.update(kept)
        row("TAESD eager: preview (p50 / p90), ms", *p50_p90(previews))
    where_the_time_goes(pipe, target)
    separate = target.text_pipeline(replace(target.acceleration(), fused_projections=False),
                                    "the UNet's graph is new: compiled now")
    latency_rows(separate, target, "separate Q/K/V projections")
    del separate
    gc.collect()
    if not target.tiny:
        torch.cuda.empty_cache()
    return pipe


@section("Animation and upscale: SD 2.1-base, all options (bench/motion.py)")
def motion_part(pipe: Any, target: Target) -> None:
    from .motion import motion_rows

    for what, value, note in motion_rows(pipe, target.size, target.steps, target.sync):
        row(what, value, note)


@section("Reading AUs: one 512x512 image (bench/reading.py; onnxruntime's CPU provider where no CUDA one)")
def reading_part(target: Target) -> None:
    from .reading import reading_latency

    label, rows = reading_latency(None, None, target.repeats)
    print(label)
    for what, ms in rows:
        row(what, ms)


@section("fp16 correctness and latency: SD 2.1-base text + AUs")
def fp16_text_part() -> Any:
    pipe = fp16_against_fp32(full_size.text_pipeline, None)
    print()
    accelerate_and_compare(pipe, "SD 2.1", end_to_end(pipe, "SD 2.1, eager"))
    return pipe


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


@section("Photo edit: MagicFace's full-size layout, a 512 px photo and a 12 MP one (bench/editing.py)")
def edit_part(target: Target) -> None:
    from ..studio import Studio
    from .editing import edit_rows, full_size_edit_studio
    from .reading import drawn_face

    folder = Path(tempfile.mkdtemp(dir=target.folder))
    studio = (Studio.with_random_weights(folder) if target.tiny
              else full_size_edit_studio(folder, "cuda", torch.float16))
    steps = 2 if target.tiny else None  # None: the app's default
    for photo in (drawn_face(), drawn_face().resize((4032, 3024))):
        print(f"{photo.width}x{photo.height} photo")
        for what, value, note in edit_rows(studio, photo, steps, target.sync):
            row(what, value, note)


@section("Evaluation: images per second of `fineface-ui eval`'s loop (bench/evaluation.py)")
def eval_part(pipe: Any, target: Target) -> None:
    from ..standins.full_size_clip import full_size_clip
    from .evaluation import eval_rows, full_size_studio

    studio = full_size_studio(pipe, Path(tempfile.mkdtemp(dir=target.folder)))
    clip = full_size_clip("cpu" if target.tiny else "cuda")
    for what, value, note in eval_rows(studio, clip, 2 if target.tiny else 16, target.sync):
        row(what, value, note)


PARTS = ("start", "text", "motion", "reading", "edit", "eval")
EARLIER_PARTS = ("fp16", "components")


def main(parts: Sequence[str] = PARTS, tiny: bool = False) -> None:
    import diffusers
    import transformers

    where = "CPU, tiny test models" if tiny else torch.cuda.get_device_name(0)
    print(f"# {where}; torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"transformers {transformers.__version__}")
    print(f"command: python -m fineface_ui.bench --device {'cpu --tiny' if tiny else 'cuda'} --full-size "
          f"--parts {' '.join(parts)}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fineface-bench-") as folder, torch.no_grad():
        # One compile cache for the run: the start-up part fills it, the later pipelines find their code there.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(folder) / "torch-compile-cache")
        target = Target(tiny, Path(folder))
        if "start" in parts:
            startup_part(target)
        pipe = text_part(target) if {"text", "motion", "eval"} & set(parts) else None
        if pipe is not None and "motion" in parts:
            motion_part(pipe, target)
        if "reading" in parts:
            reading_part(target)
        if "edit" in parts:
            edit_part(target)
        if pipe is not None and "eval" in parts:
            eval_part(pipe, target)
        del pipe
        if "fp16" in parts:
            earlier_fp16_parts()
        if "components" in parts:
            graphs_only_part()
            step_table()
            vae_table()
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s")


def earlier_fp16_parts() -> None:
    """fp16 against fp32 and eager against accelerated for both pipelines, then memory with both loaded."""
    text = fp16_text_part()
    identity = identity_part()
    if text is not None and identity is not None:
        memory_part(text, identity)
    del text, identity
    torch.cuda.empty_cache()
