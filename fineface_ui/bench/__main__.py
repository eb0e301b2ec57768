"""Benchmark: `python -m fineface_ui.bench`. Measures, never asserts.

CPU: reading AUs from one image (reading.py), then the full-size SD 2.1-base UNet (random weights) at a
small latent size, one denoising step of
our processors (SDPA, AU term precomputed, LoRA fused) against the literal paper Eq. 2 (bmm
attention, AU attention every step, LoRA unfused).
`--random-weights`: live previews with the tiny models of `app.py --random-weights` (live.py).
`--device cuda --full-size`: the GPU table of gpu_table.py (start-up, renders and previews under each
speed option, the GPU's share of each capability; `--parts` for the earlier rounds' tables);
`--full-size --tiny` runs it with the tiny test models on the CPU, to try it before a GPU run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from ..engine.au_encoder import AUEncoder
from ..engine.checkpoints import read_state_dict
from ..engine.lora import FILE_PREFIX
from ..standins.full_size import adapted_unet
from ..standins.layouts import SD21_BASE_UNET
from .gpu_table import EARLIER_PARTS, PARTS
from .gpu_table import main as full_size_table
from .reference import install_reference
from .table import median_ms


def compare_processors(device: str, dtype: torch.dtype, latent: int, repeats: int) -> list[tuple[str, float]]:
    """Per-step UNet time (CFG batch of 2) of our processors and of the literal reference."""
    with tempfile.TemporaryDirectory() as folder:
        unet, adapters, lora = adapted_unet(SD21_BASE_UNET, device, lora_folder=Path(folder))
        lora_state = read_state_dict(Path(folder) / "lora.safetensors")
    unet.to(device, dtype)
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
        return median_ms(lambda: unet(latents, timestep, encoder_hidden_states=text), repeats, sync)

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


def face_embedding_latency(photo_path: Path | None) -> tuple[str, list[tuple[str, float]]]:
    """Cold (models load + detection) and cached embedding of one photo.

    With a real photo and buffalo_l installed, the real models; otherwise the tiny stand-ins on a
    drawn face, which times the pipeline around InsightFace rather than the networks.
    """
    from PIL import Image, ImageDraw

    from ..faces.embedder import FaceEmbedder
    from ..standins.tiny_face_models import write_model_pack

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
    cached = median_ms(lambda: embedder.embed(photo), 5, lambda: None)
    return label, [("face embedding, cold (load models + detect + embed), ms", cold),
                   ("face embedding, same photo again (cache), ms", cached)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fineface_ui.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latent", type=int, default=16, help="CPU latent size (16 = a 128x128 image)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--face-photo", type=Path, help="a real face photo, to time InsightFace buffalo_l")
    parser.add_argument("--au-reader", type=Path, help="LibreFace's AU model (.onnx), to time the real reader")
    parser.add_argument("--face-models", type=Path, help="the folder holding models/buffalo_l, for --au-reader")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--full-size", action="store_true",
                        help="with --device cuda: the GPU table at 512x512 (gpu_table.py)")
    parser.add_argument("--parts", nargs="+", choices=(*PARTS, *EARLIER_PARTS), default=PARTS,
                        help=f"with --full-size: the parts of the GPU table to run (default: {' '.join(PARTS)})")
    parser.add_argument("--tiny", action="store_true",
                        help="with --full-size: the GPU table's parts with the tiny test models on the CPU")
    parser.add_argument("--random-weights", action="store_true",
                        help="live previews on the CPU with the tiny models of app.py --random-weights (live.py)")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    if args.random_weights:
        from .live import main as live_tables

        return live_tables(args.repeats)
    if args.full_size and args.tiny:
        if set(args.parts) & set(EARLIER_PARTS):
            parser.error(f"{' and '.join(EARLIER_PARTS)} need a CUDA GPU: --tiny runs {' '.join(PARTS)}")
        return full_size_table(args.parts, tiny=True)
    if args.device == "cuda" or args.full_size:
        if not (args.device == "cuda" and args.full_size and torch.cuda.is_available()):
            parser.error("the GPU table needs --device cuda --full-size and a CUDA GPU (or --full-size --tiny)")
        return full_size_table(args.parts)

    label, rows = face_embedding_latency(args.face_photo)
    print(f"Faces ({label}), providers as FaceEmbedder picks them")
    for name, ms in rows:
        print(f"| {name:<66} | {ms:9.1f} |")
    print()

    from .reading import reading_latency, render_beside_reading

    label, rows = reading_latency(args.au_reader, args.face_models, args.repeats)
    print(f"Reading AUs ({label})")
    for name, ms in [*rows, *render_beside_reading(args.repeats)]:
        print(f"| {name:<66} | {ms:9.1f} |")
    print()

    rows = compare_processors("cpu", torch.float32, args.latent, args.repeats)
    print(f"CPU, {torch.get_num_threads()} threads, full-size SD 2.1-base UNet, latent {args.latent}x{args.latent}, "
          "batch 2 (CFG), fp32")
    print(f"| {'variant':<66} | {'ms / step':>9} |\n|{'-' * 68}|{'-' * 11}|")
    for name, ms in rows:
        print(f"| {name:<66} | {ms:9.1f} |")
    print(f"reference / ours: {rows[1][1] / rows[0][1]:.2f}x")


if __name__ == "__main__":
    main()
