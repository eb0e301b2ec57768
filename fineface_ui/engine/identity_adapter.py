"""The identity adapter: IP-Adapter-FaceID "portrait" turns a face into tokens (paper Eq. 5).

Each face's 512-d ArcFace embedding becomes 16 tokens that every cross-attention layer attends to
through its own to_k_ip / to_v_ip projections, which the FineFace processors hold (attention.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, InvalidInputError
from ..hub.weights import display_name
from .attention import FineFaceAttnProcessor, attention_layers
from .checkpoints import load_checked, load_parameters, read_state_dict

FACE_EMBEDDING_DIM = 512  # InsightFace ArcFace (buffalo_l w600k_r50)
LAYER_KEYS = ("to_k_ip", "to_v_ip")


class IdentityProjection(nn.Module):
    """Face embedding -> identity tokens: Linear(512, 1024) -> GELU -> Linear(1024, tokens * dim), LayerNorm."""

    def __init__(self, token_dim: int, num_tokens: int) -> None:
        super().__init__()
        # Attribute names are the released file's keys ("proj.0.weight", "norm.bias", ...).
        self.proj = nn.Sequential(
            nn.Linear(FACE_EMBEDDING_DIM, 2 * FACE_EMBEDDING_DIM),
            nn.GELU(),
            nn.Linear(2 * FACE_EMBEDDING_DIM, token_dim * num_tokens),
        )
        self.norm = nn.LayerNorm(token_dim)
        self.token_dim, self.num_tokens = token_dim, num_tokens

    def forward(self, face_embeds: torch.Tensor) -> torch.Tensor:
        """(n_faces, 512) -> (1, n_faces * num_tokens, dim): several photos of one person, tokens concatenated."""
        tokens = self.proj(face_embeds.to(self.norm.weight.dtype))
        return self.norm(tokens.reshape(1, -1, self.token_dim))


def identity_layer_indices(unet: nn.Module) -> dict[str, int]:
    """Cross-attention processor name -> its position among all attention processors, as IP-Adapter keys name it."""
    return {name: index for index, (name, layer) in enumerate(attention_layers(unet).items())
            if layer.is_cross_attention}


class IdentityAdapter:
    """The optional face part of a pipeline: the projection that makes a request's identity tokens."""

    def __init__(self, projection: IdentityProjection) -> None:
        self.projection = projection

    @classmethod
    def load(cls, path: Path, unet: nn.Module, adapters: dict[str, FineFaceAttnProcessor]) -> "IdentityAdapter":
        """From the portrait file: 'image_proj' is the projection, 'ip_adapter' the processors' identity K/V."""
        state = read_state_dict(path)
        if set(state) != {"image_proj", "ip_adapter"}:
            raise CheckpointError(f"{display_name(path)} should hold 'image_proj' and 'ip_adapter', "
                                  f"found {sorted(state)}.")
        # Only cross-attention layers have identity weights; a key at a self-attention index is unexpected.
        load_parameters(path, state["ip_adapter"], {  # type: ignore[arg-type]
            f"{index}.{key}.weight": getattr(adapters[name], key).weight
            for name, index in identity_layer_indices(unet).items() for key in LAYER_KEYS
        })
        token_dim = unet.config.cross_attention_dim
        return cls(_load_projection(path, state["image_proj"], token_dim))  # type: ignore[arg-type]

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        self.projection.to(device, dtype)

    def tokens(self, face_embeds: torch.Tensor, count: int, guided: bool) -> torch.Tensor:
        """Tokens of all given faces for each of `count` images; the unconditional half projects zero embeddings."""
        if face_embeds.ndim != 2 or face_embeds.shape[1] != FACE_EMBEDDING_DIM or not len(face_embeds):
            raise InvalidInputError(f"face_embeds must have shape (n_faces, {FACE_EMBEDDING_DIM}), "
                                    f"got {tuple(face_embeds.shape)}.")
        if not torch.isfinite(face_embeds).all():
            raise InvalidInputError("face_embeds contains NaN or infinite values.")
        face_embeds = face_embeds.to(self.projection.norm.weight.device)
        tokens = self.projection(face_embeds).expand(count, -1, -1)
        if guided:
            unconditional = self.projection(torch.zeros_like(face_embeds)).expand(count, -1, -1)
            tokens = torch.cat([unconditional, tokens])
        return tokens


def _load_projection(path: Path, state: dict, token_dim: int) -> IdentityProjection:
    out_features = state.get("proj.2.weight")
    if not isinstance(out_features, torch.Tensor) or out_features.shape[0] % token_dim:
        raise CheckpointError(f"{display_name(path)}: image_proj has no proj.2.weight of a multiple of {token_dim} rows.")
    projection = IdentityProjection(token_dim, out_features.shape[0] // token_dim)
    load_checked(projection, path, state)
    return projection
