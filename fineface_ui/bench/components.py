"""Component rows of the full-size GPU table: one UNet step and one VAE decode under each speed option.

(a) diffusers' plain UNet with its default processors and no adapter or LoRA (the peer baseline),
(b) ours (FineFace processors, AU term precomputed, LoRA fused), (c) the literal paper Eq. 2
(bmm attention, AU attention every step, LoRA applied unfused through PEFT).
"""

from __future__ import annotations

import statistics
import tempfile
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..engine.acceleration import Acceleration, WarmedForward, warming
from ..engine.attention import request_addresses
from ..engine.au_encoder import AUEncoder
from ..engine.checkpoints import read_state_dict
from ..engine.fused_projections import fuse
from ..engine.lora import FILE_PREFIX
from ..standins import full_size
from ..standins.layouts import SD21_BASE_UNET, SD21_BASE_VAE
from .reference import install_reference
from .table import ALL_ON, row, section, timed_ms


def _step_runner(unet: Any, adapters: dict, acceleration: Acceleration) -> Callable[[], Any]:
    latents = torch.randn(2, 4, 64, 64, device="cuda", dtype=torch.float16)
    text = torch.randn(2, 77, 1024, device="cuda", dtype=torch.float16)
    timestep = torch.tensor(500, device="cuda")
    if adapters:
        encoder = AUEncoder(64, 1024).to("cuda", torch.float16)
        tokens = encoder(torch.tensor([[0.0] * 12, [0, 0, 0, 0, 2.5, 0, 5, 0, 0, 0, 0, 0]], device="cuda"))
        for adapter in adapters.values():
            adapter.begin_request(tokens, 1.0)
            if acceleration.needs_warm_up:
                adapter.pin_request_tensors()
    if acceleration.channels_last:
        unet.to(memory_format=torch.channels_last)
    if acceleration.fused_projections:
        fuse(unet)
    run = lambda: unet(latents, timestep, encoder_hidden_states=text, return_dict=False)  # noqa: E731
    if acceleration.needs_warm_up:
        forward = WarmedForward(unet, acceleration, lambda: request_addresses(adapters.values()))
        with warming([forward]):
            run()
    return run


@section("UNet step, batch 2 (guidance), 64x64 latent (512x512), fp16, ms")
def step_table() -> None:
    def plain() -> tuple:
        return full_size.random_unet(SD21_BASE_UNET, "cuda").half(), {}

    def fused_qkv() -> tuple:
        unet = plain()[0]
        unet.fuse_qkv_projections()
        return unet, {}

    def ours() -> tuple:
        unet, adapters, _ = full_size.adapted_unet(SD21_BASE_UNET, "cuda")
        return unet.half(), adapters

    off = Acceleration()
    # Eager steps are bound by Python's kernel launches and jitter with the host: interleave rounds.
    runs = {"(a) diffusers plain, default processors": (_step_runner(*plain(), off), nullcontext),
            "(a) diffusers plain, fused QKV": (_step_runner(*fused_qkv(), off), nullcontext)}
    ours_eager = _step_runner(*ours(), off)
    runs["(b) ours"] = (ours_eager, nullcontext)
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION):
        runs[f"(b) ours, SDPA {backend.name}"] = (ours_eager, lambda b=backend: sdpa_kernel([b]))
    runs["(b) ours, channels-last"] = (_step_runner(*ours(), Acceleration(channels_last=True)), nullcontext)
    runs["(c) paper Eq. 2 literal, LoRA unfused"] = (reference_step(), nullcontext)
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(3):
        for name, (run, context) in runs.items():
            try:
                with context():
                    samples[name] += timed_ms(run, 20, warm_ups=3)
            except Exception as error:  # e.g. an SDPA backend that does not take these shapes
                print(f"{name}: {type(error).__name__}: {str(error)[:120]}")
    del runs, ours_eager
    torch.cuda.empty_cache()
    row("UNet", "options", "ms / step, median", "p10 .. p90")
    row("---", "---", "---", "---")
    for name, times in samples.items():
        if times:
            deciles = statistics.quantiles(times, n=10)
            row(name, "eager", statistics.median(times), f"{deciles[0]:.2f} .. {deciles[8]:.2f}")
    for name, make, acceleration in (
        ("(b) ours", ours, Acceleration(cuda_graphs=True)),
        ("(b) ours", ours, Acceleration(channels_last=True, cuda_graphs=True)),
        ("(b) ours", ours, ALL_ON),
        ("(b) ours", ours, replace(ALL_ON, fused_projections=True)),
        ("(a) diffusers plain, default processors", plain, ALL_ON),
        ("(a) diffusers plain, fused QKV", fused_qkv, ALL_ON),
    ):
        times = timed_ms(_step_runner(*make(), acceleration), 50, warm_ups=5)
        deciles = statistics.quantiles(times, n=10)
        row(name, acceleration, statistics.median(times), f"{deciles[0]:.2f} .. {deciles[8]:.2f}")
        torch.cuda.empty_cache()


def reference_step() -> Callable[[], Any]:
    """(c): the literal Eq. 2 (bmm, AU attention every step) with the LoRA applied unfused through PEFT."""
    with tempfile.TemporaryDirectory() as folder:
        unet, adapters, lora = full_size.adapted_unet(SD21_BASE_UNET, "cuda", lora_folder=Path(folder))
        state = read_state_dict(Path(folder) / "lora.safetensors")
    lora.set_scale(0.0)
    unet.load_lora_adapter(state, prefix=FILE_PREFIX, adapter_name="reference")
    unet.set_adapters(["reference"], weights=[0.25])
    references = install_reference(unet.half(), adapters)
    return _step_runner(unet, references, Acceleration())


@section("VAE decode, one 512x512 image, fp16, ms (median of 30)")
def vae_table() -> None:
    from diffusers import AutoencoderKL

    for acceleration in (Acceleration(), Acceleration(channels_last=True), ALL_ON):
        torch.manual_seed(0)
        with torch.device("cuda"):
            vae = AutoencoderKL(**SD21_BASE_VAE).half().eval()
        latents = torch.randn(1, 4, 64, 64, device="cuda", dtype=torch.float16)
        if acceleration.channels_last:
            vae.to(memory_format=torch.channels_last)
        decode = lambda: vae.decode(latents)  # noqa: E731
        if acceleration.needs_warm_up:
            forward = WarmedForward(vae.decoder, acceleration)
            with warming([forward]):
                decode()
        row("VAE decode", acceleration, statistics.median(timed_ms(decode, 30)))
