"""The FineFace cross-attention processor: text attention plus the AU (and identity) adapter branches.

    Z = Attn(Q, K_text, V_text) + ip_scale * Attn(Q, K_id, V_id) + au_scale * Attn(Q, K_AU, V_AU)

added before `to_out` (paper Eq. 2 and Eq. 5). Self-attention keeps diffusers' own SDPA processor (its fused
one with fused projections, fused_projections.py).

The AU branch attends over a single token, so its softmax is exactly 1 and Attn(Q, K_AU, V_AU) is
au_to_v(e_AU) for every query: `au_to_k` cannot change the result. The term is therefore a per-layer
constant, computed once per request in `begin_request` rather than at every step.

For the batch layouts warmed up at load, a request's terms are written in place into tensors pinned
then, so their addresses never change: a CUDA graph captured once (see acceleration.py) reads each
new request's values.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn


class FineFaceAttnProcessor(nn.Module):
    """Processor for one cross-attention layer (`attn2`); holds that layer's adapter weights."""

    def __init__(self, hidden_size: int, token_dim: int, identity_dim: int | None = None) -> None:
        super().__init__()
        # au_to_k is loaded and checked like every released key, but the one-token AU branch never needs it.
        self.au_to_k = nn.Linear(token_dim, hidden_size, bias=False)
        self.au_to_v = nn.Linear(token_dim, hidden_size, bias=False)
        if identity_dim is not None:
            self.to_k_ip = nn.Linear(identity_dim, hidden_size, bias=False)
            self.to_v_ip = nn.Linear(identity_dim, hidden_size, bias=False)
        self.has_identity = identity_dim is not None
        self._au_term: torch.Tensor | None = None
        self._identity_kv: tuple[torch.Tensor, torch.Tensor] | None = None
        # Tensors of warmed-up batch layouts, by (name, shape, dtype, device); see pin_request_tensors.
        self._pinned: dict[tuple, torch.Tensor] = {}

    @torch.no_grad()
    def begin_request(
        self,
        au_tokens: torch.Tensor,
        au_scale: float,
        identity_tokens: torch.Tensor | None = None,
        ip_scale: float = 1.0,
    ) -> None:
        """Precompute this layer's adapter terms for a batch, in the UNet's batch order (CFG included)."""
        self._au_term = self._kept("au_term", au_scale * self.au_to_v(au_tokens.to(self.au_to_v.weight.dtype)))
        self._identity_kv = None
        if identity_tokens is not None:
            if not self.has_identity:
                raise ValueError("this pipeline has no identity adapter loaded")
            identity_tokens = identity_tokens.to(self.to_k_ip.weight.dtype)
            # ip_scale * softmax(QK^T)V == softmax(QK^T)(ip_scale * V): fold the scale into V once.
            self._identity_kv = (self._kept("identity_k", self.to_k_ip(identity_tokens)),
                                 self._kept("identity_v", ip_scale * self.to_v_ip(identity_tokens)))

    def request_tensors(self) -> dict[str, torch.Tensor]:
        """What the running request reads, by name."""
        identity = dict(zip(("identity_k", "identity_v"), self._identity_kv)) if self._identity_kv else {}
        return {"au_term": self._au_term, **identity}  # type: ignore[dict-item]

    def pin_request_tensors(self) -> None:
        """Keep the running request's tensors: later requests of the same layout are written into them
        in place, so a CUDA graph captured now reads their values (see acceleration.py)."""
        for name, tensor in self.request_tensors().items():
            self._pinned[_layout(name, tensor)] = tensor

    def unpin_request_tensors(self) -> None:
        self._pinned.clear()

    def _kept(self, name: str, value: torch.Tensor) -> torch.Tensor:
        pinned = self._pinned.get(_layout(name, value))
        return value if pinned is None else pinned.copy_(value)

    def end_request(self) -> None:
        self._au_term = None
        self._identity_kv = None

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self._au_term is None:
            raise RuntimeError("FineFace attention ran outside a request: call begin_request() first")
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size = hidden_states.shape[0]
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, encoder_hidden_states.shape[1], batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])

        query = _split_heads(attn.to_q(hidden_states), attn.heads)
        if attn.fused_projections:  # K and V in one product (fused_projections.py)
            key, value = attn.to_kv(encoder_hidden_states).chunk(2, dim=-1)
        else:
            key, value = attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states)
        key, value = _split_heads(key, attn.heads), _split_heads(value, attn.heads)
        hidden_states = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask)
        if self._identity_kv is not None:
            id_key, id_value = (_split_heads(t, attn.heads) for t in self._identity_kv)
            hidden_states = hidden_states + F.scaled_dot_product_attention(query, id_key, id_value)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, query.shape[1] * query.shape[3])
        hidden_states = hidden_states + self._au_term.to(hidden_states.dtype)

        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def request_addresses(processors: Iterable[FineFaceAttnProcessor]) -> tuple:
    """Where the running request's tensors live (address and shape): a captured UNet graph reads them there."""
    return tuple((t.data_ptr(), tuple(t.shape)) for processor in processors
                 for t in processor.request_tensors().values())


def _layout(name: str, tensor: torch.Tensor) -> tuple:
    return name, tuple(tensor.shape), tensor.dtype, tensor.device


def _split_heads(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    batch_size, length, inner_dim = tensor.shape
    return tensor.view(batch_size, length, heads, inner_dim // heads).transpose(1, 2)


def attention_layers(unet: nn.Module, cross_only: bool = False) -> dict[str, Attention]:
    """The UNet's attention layers by processor name ("...attn2.processor"), in `unet.attn_processors` order.

    That order is what IP-Adapter files index, and the names prefix the released AU adapter's keys.
    """
    modules = dict(unet.named_modules())
    layers = {name: modules[name.removesuffix(".processor")] for name in unet.attn_processors}
    return {name: layer for name, layer in layers.items() if layer.is_cross_attention or not cross_only}


def install_processors(unet: nn.Module, token_dim: int, identity_dim: int | None = None) -> dict[str, FineFaceAttnProcessor]:
    """Give every cross-attention layer a FineFace processor and self-attention diffusers' SDPA one.

    Returns the new processors by their processor name, the prefix of their keys in the released checkpoints.
    """
    adapters = {name: FineFaceAttnProcessor(layer.to_out[0].in_features, token_dim, identity_dim)
                for name, layer in attention_layers(unet, cross_only=True).items()}
    unet.set_attn_processor({name: adapters[name] if name in adapters else AttnProcessor2_0()
                            for name in unet.attn_processors})
    return adapters
