"""Every generation setting, defined once, and one generation request validated against them.

SETTINGS is the single source: validation, the page's controls, the command-line flags, the HTTP
API's parameters and the README's parameter table are all derived from it. The request
(GenerationSettings) is validated once, where it enters: Python API, CLI, page and HTTP API alike.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Sequence

from .aus import ACCEPTED_RANGE, AUValues, au_dict, check_number
from .errors import InvalidInputError

MAX_SEED = 2**32 - 1
MAX_PROMPT_CHARS = 2000
MAX_IMAGES_PER_CALL = 32
# PEFT's default alpha 8 over rank 32: the strength the released LoRA was trained with (lora.py says more).
TRAINED_LORA_SCALE = 0.25
SCHEDULERS = {
    "dpm++": "DPM-Solver++ 2M, fast (25 steps are enough)",
    "paper": "the base model's own scheduler, as in the paper (50 steps)",
}
TEXT, FACE = "text", "face"  # the two pipelines: no face photo (SD 2.1-base), face photos (SD 1.5)


@dataclass(frozen=True)
class Setting:
    """One setting as every interface presents it."""

    name: str  # GenerationSettings field, API parameter and metadata key
    label: str  # the page's label
    flag: str  # the command-line option
    kind: type  # int, float or str
    default: Any
    help: str
    low: float | None = None  # numbers: the accepted range, bounds included
    high: float | None = None
    step: float = 1  # the page's slider step; sizes must also be a multiple of it
    choices: tuple[str, ...] = ()
    pipelines: tuple[str, ...] = (TEXT, FACE)  # the pipelines that use it; the others ignore it

    def check(self, value: Any) -> Any:
        """The value in its type, or an InvalidInputError naming the setting and the accepted values."""
        if self.kind is str:
            return self._check_text(value)
        number = check_number(self.label, value)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            raise InvalidInputError(f"{self.label} must be between {_number(self.low)} and {_number(self.high)}, "
                                    f"got {value!r}.")
        if self.kind is float:
            return number
        if number != int(number):
            raise InvalidInputError(f"{self.label} must be a whole number, got {value!r}.")
        if self.step != 1 and number % self.step:
            raise InvalidInputError(f"{self.label} must be a multiple of {self.step:g}, got {value!r}.")
        return int(number)

    def _check_text(self, value: Any) -> str:
        if self.choices and value not in self.choices:  # null included: there is no default to fall back on
            raise InvalidInputError(f"Unknown {self.label.lower()} {value!r}; choose one of {', '.join(self.choices)}.")
        if value is None:  # JSON's null for free text: no text
            return ""
        if not isinstance(value, str):
            raise InvalidInputError(f"{self.label} must be text, got {type(value).__name__}.")
        if len(value) > MAX_PROMPT_CHARS:
            raise InvalidInputError(f"{self.label} is {len(value)} characters long; the limit is {MAX_PROMPT_CHARS}.")
        try:  # JSON's "\ud800" decodes to a lone surrogate, which the tokenizer and the PNG metadata cannot take
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidInputError(f"{self.label} is not valid text: character {error.start + 1} is a lone "
                                    f"surrogate ({value[error.start]!r}), which has no UTF-8 encoding.") from None
        return value

    def accepted(self) -> str:
        """The accepted values in words, for help texts and the README."""
        if self.choices:
            return " or ".join(f"`{choice}`" for choice in self.choices)
        if self.kind is str:
            return f"text, at most {MAX_PROMPT_CHARS} characters"
        multiple = f", a multiple of {self.step:g}" if self.kind is int and self.step != 1 else ""
        return f"{_number(self.low)} to {_number(self.high)}{multiple}"


def _number(value: float) -> str:
    """2**32 - 1 written out, 0.25 without trailing zeros."""
    return str(int(value)) if value == int(value) else f"{value:g}"


def _size(name: str) -> Setting:
    return Setting(name, name.capitalize(), f"--{name}", int, 512, f"image {name} in pixels",
                   low=256, high=1024, step=64)


def _strength(name: str, label: str, default: float, help: str, pipelines: tuple[str, ...]) -> Setting:
    return Setting(name, label, f"--{name.replace('_', '-')}", float, default, help, low=-2, high=3, step=0.05,
                   pipelines=pipelines)


SETTINGS: tuple[Setting, ...] = (
    Setting("seed", "Seed", "--seed", int, 0, "the starting noise: the same seed and settings give the same image",
            low=0, high=MAX_SEED),
    Setting("num_inference_steps", "Steps", "--steps", int, 25,
            "denoising steps (about 25 with dpm++, 50 with the paper's scheduler)", low=1, high=150),
    Setting("guidance_scale", "Guidance scale", "--guidance", float, 7.5,
            "how closely the image follows the prompt (1 or less: no classifier-free guidance)",
            low=0, high=30, step=0.5),
    _strength("au_scale", "AU strength", 1.0, "how strongly the AU values act (1 = as trained)", (TEXT, FACE)),
    _strength("ip_scale", "Identity strength", 1.0, "how closely the face follows the photos", (FACE,)),
    _strength("lora_scale", "LoRA strength", TRAINED_LORA_SCALE,
              f"the FineFace LoRA's strength ({TRAINED_LORA_SCALE:g} is what it was trained with)", (TEXT,)),
    Setting("negative_prompt", "Negative prompt", "--negative-prompt", str, "", "what the image should not show"),
    _size("height"),
    _size("width"),
    Setting("scheduler", "Scheduler", "--scheduler", str, "dpm++",
            "; ".join(f"{name}: {text}" for name, text in SCHEDULERS.items()), choices=tuple(SCHEDULERS)),
)
SPEC = {setting.name: setting for setting in SETTINGS}
PROMPT = Setting("prompt", "Prompt", "--prompt", str, "", "the picture to make")


# Upscaling a result ("hires fix"): a larger copy of the image denoised again, lightly, by the same pipeline.
UPSCALE_SETTINGS: tuple[Setting, ...] = (
    Setting("scale", "Upscale factor", "--upscale", float, 2.0,
            "how many times larger each side becomes (the sides are rounded to a multiple of 64)",
            low=1.25, high=2, step=0.25),
    # 0.4 redraws skin and hair at the new size but keeps the face and its expression; near 1 it is a new image.
    Setting("strength", "Upscale strength", "--upscale-strength", float, 0.4,
            "how much the upscaled image is redrawn (0.4 keeps the face; 1 draws anew)", low=0.05, high=1, step=0.05),
)
UPSCALE_SPEC = {setting.name: setting for setting in UPSCALE_SETTINGS}
# The VAE's factor: an image side it encodes must be a multiple of it (diffusers' UNet matches its
# upsampling to any such size). Rounding to it keeps the upscaled image's shape within 8 pixels.
SIZE_MULTIPLE = 8


@dataclass(frozen=True)
class Upscale:
    """How a result is upscaled: its sides `scale` times longer, then redrawn at `strength` (both checked)."""

    scale: float = UPSCALE_SPEC["scale"].default
    strength: float = UPSCALE_SPEC["strength"].default

    def __post_init__(self) -> None:
        for setting in UPSCALE_SETTINGS:
            object.__setattr__(self, setting.name, setting.check(getattr(self, setting.name)))

    @classmethod
    def create(cls, **values: Any) -> "Upscale":
        unknown = set(values) - set(UPSCALE_SPEC)
        if unknown:
            raise InvalidInputError(f"Unknown upscale setting(s): {', '.join(sorted(unknown))}.")
        return cls(**values)

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The upscaled (width, height): each side `scale` times longer, to the nearest multiple of 8."""
        return tuple(round(side * self.scale / SIZE_MULTIPLE) * SIZE_MULTIPLE
                     for side in (width, height))  # type: ignore[return-value]

    def steps(self, num_inference_steps: int) -> int:
        """The denoising steps that run: the last `strength` of the schedule, as diffusers' img2img takes it.
        None is an InvalidInputError, raised where a request enters, before anything renders."""
        steps = min(int(num_inference_steps * self.strength), num_inference_steps)
        if steps < 1:
            raise InvalidInputError(f"Upscale strength {self.strength:g} of {num_inference_steps} steps runs no "
                                    "denoising step: raise the strength or the steps.")
        return steps


def is_au_list(aus: Any) -> bool:
    """Whether `aus` is several AU settings (one per image) rather than one; twelve numbers are one."""
    return isinstance(aus, (list, tuple)) and any(isinstance(item, (Mapping, str, list, tuple)) for item in aus)


@dataclass(frozen=True)
class GenerationSettings:
    """Everything that decides the image(s), apart from the models and the face photos."""

    prompt: str
    aus: tuple[dict[str, float], ...]  # one full twelve-AU dict per image
    seed: int = SPEC["seed"].default
    num_inference_steps: int = SPEC["num_inference_steps"].default
    guidance_scale: float = SPEC["guidance_scale"].default
    au_scale: float = SPEC["au_scale"].default
    ip_scale: float = SPEC["ip_scale"].default
    lora_scale: float | None = None  # None keeps the strength the pipeline has fused
    negative_prompt: str = SPEC["negative_prompt"].default
    height: int = SPEC["height"].default
    width: int = SPEC["width"].default
    scheduler: str = SPEC["scheduler"].default

    @classmethod
    def create(cls, prompt: Any, aus: AUValues | Sequence[AUValues] | None = None, **options: Any) -> "GenerationSettings":
        """Validate user values into settings; raises InvalidInputError with a readable message."""
        unknown = set(options) - set(SPEC)
        if unknown:
            raise InvalidInputError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
        if is_au_list(aus):
            au_list = [au_dict(item) for item in aus]
        else:
            au_list = [au_dict(aus)]  # type: ignore[arg-type]
        if len(au_list) > MAX_IMAGES_PER_CALL:
            raise InvalidInputError(f"At most {MAX_IMAGES_PER_CALL} AU settings per call, got {len(au_list)}.")
        checked = {name: SPEC[name].check(value) for name, value in options.items()
                   if not (name == "lora_scale" and value is None)}
        return cls(prompt=PROMPT.check(prompt), aus=tuple(au_list), **checked)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], index: int = 0) -> "GenerationSettings":
        """The settings of image `index` in a metadata dict written by this app (validated again)."""
        options = {name: metadata[name] for name in SPEC if name in metadata}
        stored = metadata.get("aus", [{}])
        if not isinstance(stored, list) or not 0 <= index < len(stored):
            raise InvalidInputError("The stored aus must be a list with one AU setting per image, got "
                                    f"{reprlib.repr(stored)}.")
        return cls.create(metadata.get("prompt", ""), stored[index], **options)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        values = asdict(self)
        values["aus"] = [dict(item) for item in self.aus]
        return values

    def as_used_by(self, pipeline: str) -> "GenerationSettings":
        """These settings with those `pipeline` ignores at their defaults: equal when the image would be."""
        return replace(self, **{s.name: s.default for s in SETTINGS if pipeline not in s.pipelines})


def parameter_table() -> str:
    """The README's table of parameters (Python, command line, HTTP API), made from SETTINGS."""
    low, high = ACCEPTED_RANGE
    rows = [
        ("prompt", PROMPT.flag, PROMPT.accepted(), "empty", PROMPT.help),
        ("aus", "--au AU=VALUE", f"each AU {low:g} to {high:g}; at most {MAX_IMAGES_PER_CALL} AU settings per call",
         "all 0", "the twelve AU intensities: `AU12=3` pairs, a dict, or twelve numbers in model order"),
        *((s.name, s.flag, s.accepted(), _shown(s.default), s.help + _used_only_with(s)) for s in SETTINGS),
    ]
    lines = ["| parameter | command line | accepts | default | what it does |", "|---|---|---|---|---|"]
    return "\n".join([*lines, *(f"| `{name}` | `{flag}` | {accepts} | {default} | {text} |"
                                for name, flag, accepts, default, text in rows)])


def _shown(default: Any) -> str:
    if isinstance(default, str):
        return f"`{default}`" if default else "empty"
    return _number(default)


def _used_only_with(setting: Setting) -> str:
    if setting.pipelines == (TEXT,):
        return "; ignored with a face photo"
    if setting.pipelines == (FACE,):
        return "; used only with a face photo"
    return ""
