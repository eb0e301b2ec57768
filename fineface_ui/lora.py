"""The FineFace LoRA (rank 32 on to_q, to_k, to_v, to_out.0 of every attention layer), fused for speed.

The released file carries no alpha. Training used PEFT's default lora_alpha=8 with r=32, so the
trained strength is 8/32 = 0.25, while diffusers' loader assumes alpha = r (strength 1.0, four times
too strong). We therefore always set the strength explicitly; 0.25 is the default.
"""

from __future__ import annotations

from pathlib import Path

from diffusers.models.attention_processor import Attention
from torch import nn

from .checkpoints import Shapes, check_keys, read_state_dict

TRAINED_LORA_SCALE = 0.25
ADAPTER_NAME = "fineface"
PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
FILE_PREFIX = "unet"


def expected_lora_shapes(unet: nn.Module, rank: int) -> Shapes:
    """Keys and shapes of a FineFace LoRA file for this UNet (PEFT names with a 'unet.' prefix)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, module in unet.named_modules():
        if not isinstance(module, Attention):
            continue
        for projection in PROJECTIONS:
            linear = module.get_submodule(projection)
            stem = f"{FILE_PREFIX}.{name}.{projection}"
            shapes[f"{stem}.lora_A.weight"] = (rank, linear.in_features)
            shapes[f"{stem}.lora_B.weight"] = (linear.out_features, rank)
    return shapes


def load_lora(unet: nn.Module, path: Path, scale: float = TRAINED_LORA_SCALE) -> int:
    """Check the file against the UNet, load it with diffusers/PEFT and fuse it at `scale`. Returns the rank."""
    state = read_state_dict(path)
    rank_keys = [key for key in state if key.endswith("lora_A.weight")]
    rank = int(state[rank_keys[0]].shape[0]) if rank_keys else 0  # type: ignore[union-attr]
    check_keys(path, state, expected_lora_shapes(unet, rank))
    unet.load_lora_adapter(state, prefix=FILE_PREFIX, adapter_name=ADAPTER_NAME)
    set_lora_scale(unet, scale, fused=False)
    return rank


def set_lora_scale(unet: nn.Module, scale: float, fused: bool = True) -> None:
    """Re-fuse the LoRA at a new strength (the adapter stays loaded so that it can be unfused)."""
    if fused:
        unet.unfuse_lora()
    # set_adapters sets the strength outright; fuse_lora(lora_scale=...) would multiply it each time.
    unet.set_adapters([ADAPTER_NAME], weights=[scale])
    unet.fuse_lora()
