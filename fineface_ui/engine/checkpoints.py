"""Reading the released checkpoint files, with every key accounted for.

A checkpoint that silently loads half its keys leaves layers random and produces plausible but
wrong faces, the worst failure this app can have. So each loader states exactly which keys and
shapes it expects, and any missing, extra or misshapen key is an error naming the file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import CheckpointError
from ..hub.weights import DOWNLOAD_COMMAND, display_name, without_paths

Shapes = Mapping[str, tuple[int, ...]]


def read_state_dict(path: Path) -> dict[str, object]:
    """Load a .safetensors or a pickled .ckpt/.bin (tensors only: weights_only=True) onto the CPU."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            return dict(load_file(path, device="cpu"))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise corrupt_file_error(path, error) from error
    if not isinstance(state, dict):
        raise CheckpointError(f"{display_name(path)} holds a {type(state).__name__}, not a state dict.")
    return state


def corrupt_file_error(path: Path, error: BaseException) -> CheckpointError:
    """A file (or model folder) that exists but cannot be read: truncated by an interrupted download, or damaged."""
    return CheckpointError(
        f"Cannot read {display_name(path)}: it is corrupt or truncated ({_first_line(error)}). "
        f"Fetch it again with `{DOWNLOAD_COMMAND} --force` (or replace the file if it is your own)."
    )


def check_keys(path: Path, state: Mapping[str, object], expected: Shapes) -> None:
    """Raise unless `state` has exactly the expected keys, each a tensor of the expected shape."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [
        f"{key} is {_shape(state[key])}, expected {list(shape)}"
        for key, shape in expected.items()
        if key in state and _shape(state[key]) != list(shape)
    ]
    problems = _key_problems(missing, unexpected)
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} wrong shape(s): {'; '.join(wrong_shape[:3])}")
    _raise_if_any(path, problems)


def check_loading_info(path: Path, loading_info: Mapping[str, list]) -> None:
    """Raise when diffusers' `from_pretrained(output_loading_info=True)` left a weight of the model
    unloaded (diffusers only warns, and the weight stays random) or ignored a key of the file."""
    _raise_if_any(path, _key_problems(sorted(loading_info["missing_keys"]), sorted(loading_info["unexpected_keys"])))


def _key_problems(missing: list[str], unexpected: list[str]) -> list[str]:
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:3])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:3])}")
    return problems


def _raise_if_any(path: Path, problems: list[str]) -> None:
    if problems:
        raise CheckpointError(
            f"{display_name(path)} does not match the model it is loaded into: {'; '.join(problems)}. "
            "Is it the right file for this base model?"
        )


def _shape(value: object) -> list[int] | str:
    return list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return without_paths(text[0]) if text else type(error).__name__


def load_parameters(path: Path, state: Mapping[str, object], parameters: Mapping[str, torch.Tensor]) -> None:
    """Copy each file tensor into the parameter of the same key, once every key and shape is checked."""
    check_keys(path, state, {key: tuple(parameter.shape) for key, parameter in parameters.items()})
    with torch.no_grad():
        for key, parameter in parameters.items():
            parameter.copy_(state[key])  # type: ignore[arg-type]


def load_checked(module: torch.nn.Module, path: Path, state: Mapping[str, object] | None = None) -> None:
    """Load a file (or an already-read part of one) into a module whose keys must match it exactly."""
    load_parameters(path, read_state_dict(path) if state is None else state, module.state_dict())
