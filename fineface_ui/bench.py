"""Benchmark: `python -m fineface_ui.bench`. Measures, never asserts.

CPU: the full-size SD 2.1-base UNet (random weights) at a small latent size, one denoising step of
our processors (SDPA, AU term precomputed, LoRA fused) against the literal paper Eq. 2 (bmm
attention, AU attention every step, LoRA unfused).
CUDA (when present): a full-size fp16 pipeline at 512x512, 25 steps: first-image and warm
end-to-end latency, per-step UNet time, and peak GPU memory.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from .attention import install_processors
from .au_encoder import AUEncoder
from .layouts import SD21_BASE_TEXT_ENCODER, SD21_BASE_UNET, SD21_BASE_VAE
from .lora import FILE_PREFIX, FusedLora
from .reference import install_reference
from .checkpoints import read_state_dict
from .tiny_models import write_lora_file


def _median_ms(run: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None) -> float:
    run()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def full_size_unet_with_adapter(device: str, dtype: torch.dtype, lora_dir: Path):
    """SD 2.1-base UNet with random weights, FineFace processors, and a random rank-32 LoRA fused at 0.25."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**SD21_BASE_UNET)
    adapters = install_processors(unet, token_dim=1024)
    write_lora_file(unet, lora_dir / "lora.safetensors")
    lora = FusedLora(unet, lora_dir / "lora.safetensors", 0.25)
    return unet.to(device, dtype), adapters, lora, read_state_dict(lora_dir / "lora.safetensors")


def compare_processors(device: str, dtype: torch.dtype, latent: int, repeats: int) -> list[tuple[str, float]]:
    """Per-step UNet time (CFG batch of 2) of our processors and of the literal reference."""
    with tempfile.TemporaryDirectory() as folder:
        unet, adapters, lora, lora_state = full_size_unet_with_adapter(device, dtype, Path(folder))
    encoder = AUEncoder(64, 1024).to(device, dtype)
    latents = torch.randn(2, 4, latent, latent, device=device, dtype=dtype)
    text = torch.randn(2, 77, 1024, device=device, dtype=dtype)
    au_tokens = encoder(torch.tensor([[0.0] * 12, [0, 0, 0, 0, 2.5, 0, 5, 0, 0, 0, 0, 0]], device=device))
    timestep = torch.tensor(500, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    @torch.no_grad()
    def step(processors: dict) -> float:
        for processor in processors.values():
            processor.begin_request(au_tokens, 1.0)
        return _median_ms(lambda: unet(latents, timestep, encoder_hidden_states=text), repeats, sync)

    ours = step(adapters)
    originals = dict(unet.attn_processors)
    references = install_reference(unet, adapters)
    # The reference applies the LoRA unfused, through PEFT, at every call.
    lora.set_scale(0.0)
    unet.load_lora_adapter(lora_state, prefix=FILE_PREFIX, adapter_name="reference")
    unet.set_adapters(["reference"], weights=[0.25])
    reference = step(references)
    unet.delete_adapters("reference")
    lora.set_scale(0.25)
    unet.set_attn_processor(originals)
    return [("FineFace processors, SDPA, AU term once, LoRA fused", ours),
            ("paper Eq. 2 literal: bmm, AU attention every step, LoRA unfused", reference)]


def full_size_pipeline(device: str, dtype: torch.dtype):
    """A FineFacePipeline with SD 2.1-base's full-size components and random weights."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    from .pipeline import FineFacePipeline
    from .tiny_models import tokenizer_from_vocab

    with tempfile.TemporaryDirectory() as folder:
        unet, adapters, lora, _ = full_size_unet_with_adapter("cpu", torch.float32, Path(folder))
        tokenizer = tokenizer_from_vocab(Path(folder) / "tokenizer")
    text_encoder = CLIPTextModel(CLIPTextConfig(**{
        **SD21_BASE_TEXT_ENCODER, "vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
    }))
    sd = StableDiffusionPipeline(
        vae=AutoencoderKL(**SD21_BASE_VAE), text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                skip_prk_steps=True, steps_offset=1),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    sd.set_progress_bar_config(disable=True)
    sd.to(device, dtype)
    pipe = FineFacePipeline(sd, AUEncoder(64, 1024), adapters, {"base_model": "random full-size"}, lora)
    return pipe.to(torch.device(device), dtype)


def cuda_end_to_end(steps: int = 25) -> list[tuple[str, float]]:
    torch.cuda.reset_peak_memory_stats()
    pipe = full_size_pipeline("cuda", torch.float16)
    options = {"seed": 1, "num_inference_steps": steps, "height": 512, "width": 512}
    start = time.perf_counter()
    pipe("a close-up of a woman", {"AU12": 3}, **options)
    torch.cuda.synchronize()
    first = (time.perf_counter() - start) * 1000
    warm = _median_ms(lambda: pipe("a close-up of a woman", {"AU12": 4}, **options), 3, torch.cuda.synchronize)
    return [("first image (cold caches, prompt encoded), ms", first),
            (f"end-to-end 512x512, {steps} steps, slider move, ms", warm),
            ("peak GPU memory, MiB", torch.cuda.max_memory_allocated() / 2**20)]


def face_embedding_latency(photo_path: Path | None) -> tuple[str, list[tuple[str, float]]]:
    """Cold (models load + detection) and cached embedding of one photo.

    With a real photo and buffalo_l installed, the real models; otherwise the tiny stand-ins on a
    drawn face, which times the pipeline around InsightFace rather than the networks.
    """
    from PIL import Image, ImageDraw

    from .faces import FaceEmbedder
    from .tiny_face_models import write_model_pack

    if photo_path is not None:
        embedder, photo, label = FaceEmbedder(), Image.open(photo_path), f"buffalo_l on {photo_path.name}"
    else:
        root = Path(tempfile.mkdtemp(prefix="fineface-bench-faces-"))
        write_model_pack(root)
        photo = Image.new("RGB", (1024, 1024), (30, 30, 30))
        ImageDraw.Draw(photo).rectangle((350, 300, 650, 650), fill=(235, 220, 200))
        embedder, label = FaceEmbedder(root=root), "tiny stand-in models, 1024x1024 drawn face"
    start = time.perf_counter()
    embedder.embed(photo)
    cold = (time.perf_counter() - start) * 1000
    cached = _median_ms(lambda: embedder.embed(photo), 5)
    return label, [("face embedding, cold (load models + detect + embed), ms", cold),
                   ("face embedding, same photo again (cache), ms", cached)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latent", type=int, default=16, help="CPU latent size (16 = a 128x128 image)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--face-photo", type=Path, help="a real face photo, to time InsightFace buffalo_l")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)

    label, rows = face_embedding_latency(args.face_photo)
    print(f"Faces ({label}), providers as FaceEmbedder picks them")
    for name, ms in rows:
        print(f"| {name:<66} | {ms:9.1f} |")
    print()

    rows = compare_processors("cpu", torch.float32, args.latent, args.repeats)
    print(f"CPU, {torch.get_num_threads()} threads, full-size SD 2.1-base UNet, latent {args.latent}x{args.latent}, "
          "batch 2 (CFG), fp32")
    print(f"| {'variant':<66} | {'ms / step':>9} |\n|{'-' * 68}|{'-' * 11}|")
    for name, ms in rows:
        print(f"| {name:<66} | {ms:9.1f} |")
    print(f"reference / ours: {rows[1][1] / rows[0][1]:.2f}x")

    if torch.cuda.is_available():
        rows = compare_processors("cuda", torch.float16, 64, 10)
        print(f"\nCUDA {torch.cuda.get_device_name(0)}, fp16, latent 64x64 (512x512 image), batch 2 (CFG)")
        for name, ms in rows:
            print(f"| {name:<66} | {ms:9.2f} ms/step |")
        print(f"reference / ours: {rows[1][1] / rows[0][1]:.2f}x")
        for name, value in cuda_end_to_end():
            print(f"| {name:<66} | {value:12.1f} |")


if __name__ == "__main__":
    main()
