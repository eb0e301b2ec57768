"""Fused attention projections: one matrix product for self-attention's Q, K and V, and one for
cross-attention's K and V, instead of three and two (fewer, larger kernels; docs/benchmarks.md).

diffusers' `UNet2DConditionModel.fuse_qkv_projections` would also give every layer its own fused
processor, dropping the FineFace ones; so the layers are fused one by one with diffusers'
`Attention.fuse_projections`, self-attention takes diffusers' fused processor, and the FineFace
processor reads `to_kv` itself (attention.py).

The separate projections stay: the LoRA writes each strength into them (lora.py) and `refresh` then
copies them into the fused weights in place, where a captured CUDA graph reads them. Keeping both
costs 120 MiB of fp16 weights for SD 2.1's UNet (63 M parameters), 107 MiB for SD 1.5's.
"""

from __future__ import annotations

from typing import Iterable

import torch
from diffusers.models.attention_processor import Attention, FusedAttnProcessor2_0
from torch import nn

from .attention import attention_layers


def fuse(unet: nn.Module) -> None:
    """Every attention layer of `unet` fused, its FineFace processor kept."""
    layers = attention_layers(unet)
    for layer in layers.values():
        layer.fuse_projections()
    processors = unet.attn_processors
    unet.set_attn_processor({name: processors[name] if layer.is_cross_attention else FusedAttnProcessor2_0()
                             for name, layer in layers.items()})


@torch.no_grad()
def refresh(layers: Iterable[Attention]) -> None:
    """The fused weights of these layers from their separate projections (after the LoRA changed them)."""
    for layer in layers:
        if not layer.fused_projections:
            continue
        if layer.is_cross_attention:
            layer.to_kv.weight.copy_(torch.cat([layer.to_k.weight, layer.to_v.weight]))
        else:
            layer.to_qkv.weight.copy_(torch.cat([layer.to_q.weight, layer.to_k.weight, layer.to_v.weight]))
