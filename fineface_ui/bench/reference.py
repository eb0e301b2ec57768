"""Paper Eq. 2 written out literally, as the yardstick for FineFaceAttnProcessor (tests and benchmark).

Every call computes bmm attention over the text tokens and, separately, over the AU token with both
au_to_k and au_to_v, the way the reference implementation does. It shares the adapter weights of the
FineFace processors it stands in for.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor
from torch import nn

from ..engine.attention import FineFaceAttnProcessor


class ReferenceAUAttnProcessor(nn.Module):
    def __init__(self, fineface: FineFaceAttnProcessor) -> None:
        super().__init__()
        self.au_to_k, self.au_to_v = fineface.au_to_k, fineface.au_to_v
        self._au_tokens: torch.Tensor | None = None
        self._au_scale = 1.0

    def begin_request(self, au_tokens: torch.Tensor, au_scale: float, identity_tokens: None = None,
                      ip_scale: float = 1.0) -> None:
        if identity_tokens is not None:
            raise ValueError("the reference covers the AU branch only")
        self._au_tokens, self._au_scale = au_tokens, au_scale

    def end_request(self) -> None:
        self._au_tokens = None

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None) -> torch.Tensor:
        residual = hidden_states
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states

        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        text = attn.batch_to_head_dim(torch.bmm(attn.get_attention_scores(query, key, attention_mask), value))

        au_tokens = self._au_tokens.to(query.dtype)
        au_key = attn.head_to_batch_dim(self.au_to_k(au_tokens))
        au_value = attn.head_to_batch_dim(self.au_to_v(au_tokens))
        au = attn.batch_to_head_dim(torch.bmm(attn.get_attention_scores(query, au_key, None), au_value))

        hidden_states = attn.to_out[1](attn.to_out[0](text + self._au_scale * au))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def install_reference(unet: nn.Module, adapters: dict[str, FineFaceAttnProcessor]) -> dict[str, ReferenceAUAttnProcessor]:
    """Swap in the literal Eq. 2 for cross-attention and diffusers' bmm AttnProcessor for self-attention."""
    references = {name: ReferenceAUAttnProcessor(adapter) for name, adapter in adapters.items()}
    unet.set_attn_processor({name: references.get(name) or AttnProcessor() for name in unet.attn_processors})
    return references
