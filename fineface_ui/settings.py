"""One generation request, validated once where it enters (Python API, CLI, UI and HTTP API alike)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from .aus import AUValues, au_dict
from .errors import InvalidInputError

SCHEDULERS = {
    "dpm++": "DPM-Solver++ 2M, fast (25 steps are enough)",
    "paper": "the base model's own scheduler, as in the paper (50 steps)",
}
MAX_SEED = 2**32 - 1
MAX_PROMPT_CHARS = 2000
MAX_IMAGES_PER_CALL = 32
SIZES = range(256, 1025, 64)


def _number(name: str, value: Any, low: float, high: float, integer: bool = False) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidInputError(f"{name} must be between {low:g} and {high:g}, got {value!r}.")
    if integer:
        if number != int(number):
            raise InvalidInputError(f"{name} must be a whole number, got {value!r}.")
        return int(number)
    return number


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be text, got {type(value).__name__}.")
    if len(value) > MAX_PROMPT_CHARS:
        raise InvalidInputError(f"{name} is {len(value)} characters long; the limit is {MAX_PROMPT_CHARS}.")
    return value


@dataclass(frozen=True)
class GenerationSettings:
    """Everything that decides the image(s), apart from the models and the face photos."""

    prompt: str
    aus: tuple[dict[str, float], ...]  # one full twelve-AU dict per image
    seed: int = 0
    num_inference_steps: int = 25
    guidance_scale: float = 7.5
    au_scale: float = 1.0
    negative_prompt: str = ""
    height: int = 512
    width: int = 512
    scheduler: str = "dpm++"
    ip_scale: float = 1.0
    lora_scale: float | None = None  # None keeps the strength the pipeline has fused

    @classmethod
    def create(cls, prompt: Any, aus: AUValues | Sequence[AUValues] | None = None, **options: Any) -> "GenerationSettings":
        """Validate user values into settings; raises InvalidInputError with a readable message."""
        unknown = set(options) - {f for f in cls.__dataclass_fields__ if f not in ("prompt", "aus")}
        if unknown:
            raise InvalidInputError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
        if isinstance(aus, (list, tuple)) and aus and isinstance(aus[0], (Mapping, str)):
            au_list = [au_dict(item) for item in aus]
        else:
            au_list = [au_dict(aus)]  # type: ignore[arg-type]
        if len(au_list) > MAX_IMAGES_PER_CALL:
            raise InvalidInputError(f"At most {MAX_IMAGES_PER_CALL} AU settings per call, got {len(au_list)}.")
        checked: dict[str, Any] = {}
        for name, value in options.items():
            if name == "lora_scale" and value is None:
                continue
            if name == "seed":
                checked[name] = _number("seed", value, 0, MAX_SEED, integer=True)
            elif name == "num_inference_steps":
                checked[name] = _number("steps", value, 1, 150, integer=True)
            elif name == "guidance_scale":
                checked[name] = _number("guidance scale", value, 0, 30)
            elif name in ("au_scale", "ip_scale", "lora_scale"):
                checked[name] = _number(name.replace("_", " "), value, -2, 3)
            elif name in ("height", "width"):
                size = _number(name, value, SIZES.start, SIZES.stop - 1, integer=True)
                if size % SIZES.step:
                    raise InvalidInputError(f"{name} must be a multiple of {SIZES.step}, got {size}.")
                checked[name] = size
            elif name == "negative_prompt":
                checked[name] = _text("negative prompt", value)
            elif name == "scheduler":
                if value not in SCHEDULERS:
                    raise InvalidInputError(f"Unknown scheduler {value!r}; choose one of {', '.join(SCHEDULERS)}.")
                checked[name] = value
        return cls(prompt=_text("prompt", prompt), aus=tuple(au_list), **checked)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], index: int = 0) -> "GenerationSettings":
        """The settings of image `index` in a metadata dict written by this app (validated again)."""
        options = {name: metadata[name] for name in cls.__dataclass_fields__ if name in metadata}
        options.pop("prompt", None)
        options.pop("aus", None)
        return cls.create(metadata.get("prompt", ""), (metadata.get("aus") or [{}])[index], **options)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        values = asdict(self)
        values["aus"] = [dict(item) for item in self.aus]
        return values
