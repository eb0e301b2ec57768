"""MagicFace's identity path: the source photo's features, taken from a second ("ID") UNet, join the
denoising UNet's self-attention as extra keys and values.

For each of the UNet's transformer blocks, the ID UNet's input to that block (before its norm1) is kept
(`reference_features`). The denoising block's self-attention then attends over its own tokens and
those: queries from norm1(x), keys and values from [norm1(x); norm1(reference)], where norm1 is the
*denoising* block's own. MagicFace writes this as attention over the concatenated 2N tokens, keeping
the first N outputs; as each query row is independent, that equals attending from N queries only.

diffusers has reference-only attention for its community pipelines but not as a processor that takes
features from another UNet, so this one is ours: one processor per `attn1`, holding the request's features.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention
from torch import nn


def transformer_blocks(unet: UNet2DConditionModel) -> dict[str, BasicTransformerBlock]:
    """The UNet's transformer blocks by module path (16 in SD 1.5: 6 down, 1 mid, 9 up)."""
    return {name: module for name, module in unet.named_modules() if isinstance(module, BasicTransformerBlock)}


@torch.no_grad()
def reference_features(identity_unet: UNet2DConditionModel, latents: torch.Tensor,
                       text: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each transformer block's input (before norm1) as the ID UNet sees the source latents at timestep 0,
    keyed by block path. The ID UNet's own output is not used."""
    found: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            found[name] = args[0] if args else kwargs["hidden_states"]
        return hook

    handles = [block.register_forward_pre_hook(keep(name), with_kwargs=True)
               for name, block in transformer_blocks(identity_unet).items()]
    try:
        identity_unet(latents, 0, encoder_hidden_states=text)
    finally:
        for handle in handles:
            handle.remove()
    return found


class ReferenceAttnProcessor:
    """Self-attention over the block's tokens plus the ID UNet's features of the same block.

    A plain object, not an nn.Module: it has no weights of its own, so the UNet's state dict stays the
    released one, and it uses (never owns) its block's norm1.
    """

    def __init__(self, norm: nn.Module) -> None:
        self.norm = norm
        self._reference: torch.Tensor | None = None  # norm1(features), computed once per request

    def begin_request(self, features: torch.Tensor) -> None:
        self._reference = self.norm(features)

    def end_request(self) -> None:
        self._reference = None

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 **kwargs: object) -> torch.Tensor:
        if self._reference is None:
            raise RuntimeError("the MagicFace reference attention was called outside a request")
        batch, tokens, _ = hidden_states.shape
        reference = self._reference.to(hidden_states.dtype).expand(batch, -1, -1)
        context = torch.cat([hidden_states, reference], dim=1)
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        head_dim = query.shape[-1] // attn.heads
        query, key, value = (x.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for x in (query, key, value))
        out = F.scaled_dot_product_attention(query, key, value)
        out = out.transpose(1, 2).reshape(batch, tokens, attn.heads * head_dim)
        return attn.to_out[1](attn.to_out[0](out))


def install_reference_attention(unet: UNet2DConditionModel) -> dict[str, ReferenceAttnProcessor]:
    """A ReferenceAttnProcessor on every block's self-attention (attn1), keyed by block path; the
    cross-attention (attn2) keeps diffusers' own processor."""
    processors = {}
    for name, block in transformer_blocks(unet).items():
        processors[name] = ReferenceAttnProcessor(block.norm1)
        block.attn1.set_processor(processors[name])
    return processors


@contextmanager
def references_attended(processors: dict[str, ReferenceAttnProcessor],
                        features: dict[str, torch.Tensor]) -> Iterator[None]:
    """Every block's self-attention sees the same block's features for the duration of the `with`."""
    if set(processors) != set(features):  # the two UNets must have the same blocks, or features go astray
        raise ValueError(f"the ID UNet's transformer blocks ({len(features)}) do not match the denoising "
                         f"UNet's ({len(processors)})")
    for name, processor in processors.items():
        processor.begin_request(features[name])
    try:
        yield
    finally:
        for processor in processors.values():
            processor.end_request()
