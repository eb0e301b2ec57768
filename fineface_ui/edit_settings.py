"""One photo-edit request, validated where it enters (Python, CLI, page, HTTP alike).

The sliders keep meaning absolute intensities in every mode: an edit starts from the AUs read from the
photo and asks for target intensities. MagicFace itself takes the *change* of each AU (target minus
read, 0 = leave it), which `change()` gives. `--change AU12=+2` is the same request written relatively.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from .aus import ACCEPTED_RANGE, AU_NAMES, AUValues, au_dict, check_intensity, named_intensities, parse_au_string
from .errors import InvalidInputError
from .settings import SPEC, Setting

EDIT_PIPELINE = "magicface-edit"  # the "pipeline" of an edit's metadata

# MagicFace's own defaults (its inference.py and pipeline): 50 UniPC steps, and a guidance scale of 1.5
# between the zero AU change (the unconditional branch) and the change asked for.
EDIT_SETTINGS: tuple[Setting, ...] = (
    SPEC["seed"],
    Setting("num_inference_steps", "Steps", "--steps", int, 50, "denoising steps of the edit (MagicFace uses 50)",
            low=1, high=150),
    Setting("guidance_scale", "Guidance scale", "--guidance", float, 1.5,
            "how strongly the AU change acts (MagicFace uses 1.5; 1: no guidance)", low=0, high=10, step=0.1),
)
EDIT_SPEC = {setting.name: setting for setting in EDIT_SETTINGS}


@dataclass(frozen=True)
class EditSettings:
    """The AUs read from the photo, the AUs asked for (both absolute, twelve each) and the denoising settings."""

    aus_read: dict[str, float]
    aus: dict[str, float]
    seed: int = EDIT_SPEC["seed"].default
    num_inference_steps: int = EDIT_SPEC["num_inference_steps"].default
    guidance_scale: float = EDIT_SPEC["guidance_scale"].default

    @classmethod
    def create(cls, aus_read: AUValues, aus: AUValues | None = None, *, change: AUValues | None = None,
               **options: Any) -> "EditSettings":
        """`aus` sets targets (the AUs not named keep their read value); `change` adds to the read value.
        An AU may be named in one of the two, not both."""
        unknown = set(options) - set(EDIT_SPEC)
        if unknown:
            raise InvalidInputError(f"Unknown edit setting(s): {', '.join(sorted(unknown))}.")
        read = au_dict(aus_read)
        targets = _named(aus)
        changes = _named(change)
        both = sorted(set(targets) & set(changes), key=AU_NAMES.index)
        if both:
            raise InvalidInputError(f"{', '.join(both)} is both set and changed: give each AU one way.")
        wanted = {**read, **targets, **{name: read[name] + value for name, value in changes.items()}}
        low, high = ACCEPTED_RANGE
        for name, value in changes.items():  # the user typed the change, not the sum: name both
            if not low <= wanted[name] <= high:
                raise InvalidInputError(f"{name} read from the photo ({read[name]:g}) {value:+g} is "
                                        f"{wanted[name]:g}, outside the accepted range {low:g}..{high:g}.")
        checked = {name: EDIT_SPEC[name].check(value) for name, value in options.items()}
        return cls(aus_read=read, aus={name: check_intensity(name, wanted[name]) for name in AU_NAMES}, **checked)

    def change(self) -> list[float]:
        """What MagicFace takes: each AU's target minus its read value, in model order."""
        return [self.aus[name] - self.aus_read[name] for name in AU_NAMES]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, with `aus` a one-item list as in every image's metadata."""
        values = asdict(self)
        values["aus"] = [dict(self.aus)]
        values["au_change"] = dict(zip(AU_NAMES, self.change()))
        return values


def _named(values: AUValues | None) -> dict[str, float]:
    """Only the AUs a request names: here an AU left out keeps its read value, where au_dict would make it 0.
    Twelve numbers, and "neutral" (every AU 0), name every AU."""
    if values is None:
        return {}
    if isinstance(values, str):
        return au_dict(values) if values.strip().lower() == "neutral" else parse_au_string(values)
    if isinstance(values, Mapping):
        return named_intensities((str(name), value) for name, value in values.items())
    return au_dict(values)


def parse_point(text: str | None) -> tuple[float, float] | None:
    """'X,Y' (pixels of the upright photo) as a point; empty or None: no point (the largest face)."""
    if text is None or not text.strip():
        return None
    parts = text.replace(" ", "").split(",")
    try:
        x, y = (float(part) for part in parts)
    except ValueError:
        raise InvalidInputError(f"Cannot read the face's point {text!r}: write it as X,Y in pixels, "
                                "e.g. 420,310.") from None
    if not all(math.isfinite(value) and value >= 0 for value in (x, y)):
        raise InvalidInputError(f"The face's point {text!r} must be two pixel positions of at least 0.")
    return x, y
