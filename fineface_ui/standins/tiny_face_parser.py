"""A random-weight stand-in for face-parsing.PyTorch's `79999_iter.pth`, so that face parsing runs offline
(tests, --random-weights). It is full size, since the architecture fixes every shape: the same 191 keys,
shapes and dtypes, saved the same way (torch.save of an OrderedDict of tensors). Its labels follow the
pixels, not the face."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from ..faces.face_parsing import BiSeNet


def face_parser_state(seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    """Random tensors under the real file's keys: He-scaled convolutions, near-identity batch norms."""
    with torch.device("meta"):
        layout = BiSeNet().state_dict()
    generator = torch.Generator().manual_seed(seed)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, like in layout.items():
        shape = like.shape
        if key.endswith("num_batches_tracked"):
            value = torch.tensor(0, dtype=like.dtype)  # ignored in eval mode
        elif key.endswith("running_var"):
            value = 0.5 + torch.rand(shape, generator=generator)
        elif len(shape) == 4:  # convolution
            fan_in = shape[1] * shape[2] * shape[3]
            value = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
        elif key.endswith("weight"):  # batch-norm scale (every convolution is 4-d)
            value = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        else:  # batch-norm bias and running mean
            value = 0.1 * torch.randn(shape, generator=generator)
        state[key] = value.to(like.dtype)
    return state


def write_face_parser(path: Path, seed: int = 0) -> Path:
    """Write the stand-in checkpoint to `path` (its parent folders too) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(face_parser_state(seed), path)
    return path
