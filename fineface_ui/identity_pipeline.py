"""FineFaceIdentityPipeline: text + AUs + a face identity (paper Eq. 5) on Stable Diffusion 1.5.

The AU adapter was retrained for SD 1.5 (Realistic Vision 4.0 with the sd-vae-ft-mse VAE) so that it
combines with IP-Adapter-FaceID "portrait": each face's 512-d ArcFace embedding becomes 16 tokens
that the same cross-attention layers attend to through their own to_k_ip / to_v_ip projections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL
from torch import nn

from .acceleration import Acceleration
from .attention import FineFaceAttnProcessor
from .checkpoints import check_keys, load_checked, read_state_dict
from .errors import CheckpointError, InvalidInputError
from .model_sources import identity_weights
from .pipeline import FineFacePipeline, default_device_and_dtype, load_base_pipeline, load_component, models_loaded
from .weights import display_name, resolve

FACE_EMBEDDING_DIM = 512  # InsightFace ArcFace (buffalo_l w600k_r50)


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


class FineFaceIdentityPipeline(FineFacePipeline):
    """Text + AUs + face on SD 1.5; without a face it is the AU-only SD 1.5 model."""

    kind = "sd15-identity"

    def __init__(self, *args: Any, identity_projection: IdentityProjection, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.identity_projection = identity_projection

    @staticmethod
    def au_hidden_dim(token_dim: int) -> int:
        return token_dim - 12  # the SD 1.5 encoder fills the whole token, no padding

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        base_model: str | Path | None = None,
        fineface_weights: str | Path | None = None,
        ip_adapter_weights: str | Path | None = None,
        vae: str | Path | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        allow_download: bool = True,
        acceleration: Acceleration | None = None,
    ) -> "FineFaceIdentityPipeline":
        """Load base, VAE, the SD 1.5 FineFace files and the IP-Adapter-FaceID portrait file."""
        device, dtype = default_device_and_dtype(device, dtype)
        needed = identity_weights(base_model, fineface_weights, ip_adapter_weights, vae)
        paths = resolve(needed.values(), allow_download)
        sd = load_base_pipeline(paths[needed["base_model"]], dtype,
                                vae=load_component(AutoencoderKL, paths[needed["vae"]], dtype))
        ip_path = paths[needed["ip_adapter"]]
        ip_state = read_state_dict(ip_path)
        if set(ip_state) != {"image_proj", "ip_adapter"}:
            raise CheckpointError(f"{display_name(ip_path)} should hold 'image_proj' and 'ip_adapter', "
                                  f"found {sorted(ip_state)}.")
        token_dim = sd.unet.config.cross_attention_dim
        au_encoder, adapters = cls._attach_au_adapter(
            sd, paths[needed["au_encoder"]], paths[needed["au_adapter"]], identity_dim=token_dim,
        )
        projection = _load_identity_projection(ip_path, ip_state["image_proj"], token_dim)
        _load_identity_layers(ip_path, ip_state["ip_adapter"], list(sd.unet.attn_processors), adapters)
        pipe = cls(sd, au_encoder, adapters, models_loaded(needed, paths), lora=None,
                   identity_projection=projection)
        return pipe.to(device, dtype).accelerate(acceleration)

    def to(self, device: torch.device, dtype: torch.dtype) -> "FineFaceIdentityPipeline":
        super().to(device, dtype)
        self.identity_projection.to(device, dtype)
        return self

    def _warm_up_faces(self) -> torch.Tensor:
        return torch.zeros(1, FACE_EMBEDDING_DIM)  # the fast path is built for one face photo

    def _identity_tokens(self, face_embeds: torch.Tensor | None, count: int, guided: bool) -> torch.Tensor | None:
        """Tokens of all given faces for every image; the unconditional half projects zero embeddings."""
        if face_embeds is None:
            return None
        if face_embeds.ndim != 2 or face_embeds.shape[1] != FACE_EMBEDDING_DIM or not len(face_embeds):
            raise InvalidInputError(f"face_embeds must have shape (n_faces, {FACE_EMBEDDING_DIM}), "
                                    f"got {tuple(face_embeds.shape)}.")
        if not torch.isfinite(face_embeds).all():
            raise InvalidInputError("face_embeds contains NaN or infinite values.")
        face_embeds = face_embeds.to(self.device)
        tokens = self.identity_projection(face_embeds).expand(count, -1, -1)
        if guided:
            unconditional = self.identity_projection(torch.zeros_like(face_embeds)).expand(count, -1, -1)
            tokens = torch.cat([unconditional, tokens])
        return tokens

    def _metadata(self, settings: Any, face_embeds: torch.Tensor | None) -> dict[str, Any]:
        return {**super()._metadata(settings, None), "faces": 0 if face_embeds is None else len(face_embeds)}


def _load_identity_projection(path: Path, state: dict, token_dim: int) -> IdentityProjection:
    out_features = state.get("proj.2.weight")
    if not isinstance(out_features, torch.Tensor) or out_features.shape[0] % token_dim:
        raise CheckpointError(f"{display_name(path)}: image_proj has no proj.2.weight of a multiple of {token_dim} rows.")
    projection = IdentityProjection(token_dim, out_features.shape[0] // token_dim)
    load_checked(projection, path, state)
    return projection


def _load_identity_layers(path: Path, state: dict, processor_names: list[str],
                          adapters: dict[str, FineFaceAttnProcessor]) -> None:
    """IP-Adapter keys are indexed by position in the UNet's ordered processor list ("1.to_k_ip.weight")."""
    # Only cross-attention layers have identity weights; a key at a self-attention index is unexpected.
    by_index = {str(index): name for index, name in enumerate(processor_names) if name in adapters}
    expected = {
        f"{index}.{key}.weight": tuple(getattr(adapters[name], key).weight.shape)
        for index, name in by_index.items() for key in ("to_k_ip", "to_v_ip")
    }
    check_keys(path, state, expected)
    with torch.no_grad():
        for index, name in by_index.items():
            for key in ("to_k_ip", "to_v_ip"):
                getattr(adapters[name], key).weight.copy_(state[f"{index}.{key}.weight"])
