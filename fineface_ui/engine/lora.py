"""The FineFace LoRA (rank 32 on to_q, to_k, to_v, to_out.0 of every attention layer), fused for speed.

The released file carries no alpha. Training used PEFT's default lora_alpha=8 with r=32, so the
trained strength is 8/32 = 0.25, while diffusers' loader assumes alpha = r (strength 1.0, four times
too strong). We therefore always set the strength explicitly; 0.25 is the default.

Fusing is done here rather than with diffusers' fuse_lora: that adds the update in place and unfuses
by subtracting it, so every strength change leaves rounding residue in the weights (measured: one
0.25 -> 1.0 -> 0.25 round trip changes thousands of weights) and the same settings stop giving the
same pixels. Keeping the original weights and fusing from them makes every strength exact.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..settings import TRAINED_LORA_SCALE  # defined with the settings, which the command line reads without torch
from .attention import attention_layers
from .checkpoints import Shapes, check_keys, read_state_dict
from .fused_projections import refresh

PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
FILE_PREFIX = "unet"


def lora_targets(unet: nn.Module) -> dict[str, nn.Linear]:
    """The projections the FineFace LoRA adapts, by module path."""
    return {
        f"{name.removesuffix('.processor')}.{projection}": layer.get_submodule(projection)
        for name, layer in attention_layers(unet).items() for projection in PROJECTIONS
    }


def expected_lora_shapes(unet: nn.Module, rank: int) -> Shapes:
    """Keys and shapes of a FineFace LoRA file for this UNet (PEFT names with a 'unet.' prefix)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path, linear in lora_targets(unet).items():
        shapes[f"{FILE_PREFIX}.{path}.lora_A.weight"] = (rank, linear.in_features)
        shapes[f"{FILE_PREFIX}.{path}.lora_B.weight"] = (linear.out_features, rank)
    return shapes


class FusedLora:
    """The LoRA fused into a UNet's weights, at a strength that can be changed without drift."""

    def __init__(self, unet: nn.Module, path: Path, scale: float = TRAINED_LORA_SCALE) -> None:
        state = read_state_dict(path)
        rank_keys = [key for key in state if key.endswith("lora_A.weight")]
        self.rank = int(state[rank_keys[0]].shape[0]) if rank_keys else 0  # type: ignore[union-attr]
        check_keys(path, state, expected_lora_shapes(unet, self.rank))
        self._targets = lora_targets(unet)
        self._layers = list(attention_layers(unet).values())  # their fused weights follow the strength
        # On the CPU in the model's own dtype: the exact starting point of every fuse, whatever device the
        # UNet moves to, at no more memory than the weights themselves. Only the low-rank factors are
        # kept (B @ A is formed per layer when fusing): the dense updates would be as large as the weights.
        self._original = {p: linear.weight.detach().to("cpu", copy=True) for p, linear in self._targets.items()}
        self._factors = {
            p: (state[f"{FILE_PREFIX}.{p}.lora_B.weight"], state[f"{FILE_PREFIX}.{p}.lora_A.weight"])
            for p in self._targets
        }
        self.scale = scale
        self.set_scale(scale)

    @torch.no_grad()
    def set_scale(self, scale: float) -> None:
        """Weights become original + scale * B @ A, computed in fp32 and cast to the UNet's dtype."""
        for path, linear in self._targets.items():
            up, down = self._factors[path]
            linear.weight.copy_(self._original[path].float() + scale * (up.float() @ down.float()))
        refresh(self._layers)
        self.scale = scale
