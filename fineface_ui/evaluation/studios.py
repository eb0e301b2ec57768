"""The models a process of `eval` or `batch` renders and reads with.

Stand-ins are written before Workers() starts torch.distributed: from then on transformers writes model files
on rank 0 only, and each process needs its own.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..engine.acceleration import Acceleration
from ..studio import Studio


def stand_in_studio(random_weights: bool, scratch: Path) -> Studio | None:
    """With `random_weights`, tiny stand-ins of every model written to `scratch` (call before Workers())."""
    return Studio.with_random_weights(scratch) if random_weights else None


def studio_on(device: torch.device) -> Studio:
    """The real models (fetched when missing) on `device`."""
    # Thousands of images in batches of one shape: CUDA graphs pay off, as for a one-off command; a minute-long
    # compile is left to servers.
    return Studio.from_pretrained(device=str(device), acceleration=Acceleration.default_for(device, serving=False))


def stand_in_clip(scratch: Path) -> Path:
    """A tiny random CLIP in the real layout, written to `scratch` (call before Workers())."""
    from ..standins.tiny_clip import write_tiny_clip

    return write_tiny_clip(scratch / "clip")
