"""The twelve FACS Action Units FineFace was trained on, and turning user input into its AU vector."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence, Union

from .errors import InvalidInputError


@dataclass(frozen=True)
class ActionUnit:
    name: str  # "AU12"
    facs_name: str  # "Lip Corner Puller"
    region: str  # where on the face it acts, used to group the sliders
    description: str  # what a viewer sees, in plain words


# The order is the model's input order: index i of the AU vector is ACTION_UNITS[i].
# One AU a line: name | FACS name | region (groups the sliders) | what a viewer sees, in plain words.
_TABLE = """
AU1 | Inner Brow Raiser | brows | raises the inner ends of the eyebrows
AU2 | Outer Brow Raiser | brows | raises the outer ends of the eyebrows
AU4 | Brow Lowerer | brows | pulls the brows down and together, a frown
AU5 | Upper Lid Raiser | eyes | opens the eyes wide; negative closes them
AU6 | Cheek Raiser | eyes | lifts the cheeks and narrows the eyes, as in a real smile
AU9 | Nose Wrinkler | nose | wrinkles the nose, as in disgust
AU12 | Lip Corner Puller | mouth | pulls the lip corners up, a smile; negative turns them down
AU15 | Lip Corner Depressor | mouth | pulls the lip corners down
AU17 | Chin Raiser | chin | pushes the chin and lower lip up
AU20 | Lip Stretcher | mouth | stretches the lips sideways, as in fear
AU25 | Lips Part | mouth | parts the lips
AU26 | Jaw Drop | jaw | drops the jaw, opening the mouth
"""
ACTION_UNITS: tuple[ActionUnit, ...] = tuple(ActionUnit(*line.split(" | ")) for line in _TABLE.strip().splitlines())
AU_NAMES: tuple[str, ...] = tuple(au.name for au in ACTION_UNITS)
NUM_AUS = len(ACTION_UNITS)

# FACS intensities: 0 = absent, 1..5 = A (trace) .. E (maximum). The model was trained on [0, 5].
TRAINED_RANGE = (0.0, 5.0)
# Values beyond the trained range still do something useful (above 5 exaggerates, below 0 performs
# the opposite action), but far outside it the adapter only produces artefacts.
ACCEPTED_RANGE = (-10.0, 15.0)

AUValues = Union[Mapping[str, float], Sequence[float], str]


# The one rule for numbers from users (AUs, settings, sweep frames): JSON numbers, never numeric text
# or booleans, so that `"7"` and `true` are refused alike everywhere rather than accepted here and there.
NUMBER_RULE = "numbers are sent as numbers, not as text or true/false"


def is_number(value: object) -> bool:
    """An int or float (numpy's included), but not a bool, which Python counts as an int."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(label: str, value: object) -> float:
    """`value` as a float, or an InvalidInputError stating the rule for numbers."""
    if not is_number(value):
        raise InvalidInputError(f"{label} must be a number, got {value!r} ({NUMBER_RULE}).")
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:  # an integer beyond any float: out of every range, like infinity
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


def canonical_name(name: str) -> str:
    """'au12', ' AU12 ' and '12' all name AU12; anything else is rejected with the valid names."""
    if not isinstance(name, str):
        raise InvalidInputError(f"An AU name must be text such as 'AU12', got {name!r}.")
    key = name.strip().upper()
    if not key.startswith("AU"):
        key = "AU" + key
    if key not in AU_NAMES:
        raise InvalidInputError(f"Unknown Action Unit {name.strip()!r}. Valid AUs are: {', '.join(AU_NAMES)}.")
    return key


def check_intensity(name: str, value: object) -> float:
    """One AU intensity as a float, or an InvalidInputError saying what is wrong with it."""
    number = check_number(name, value)
    if not math.isfinite(number):
        raise InvalidInputError(f"{name} must be a finite number, got {value!r}.")
    low, high = ACCEPTED_RANGE
    if not low <= number <= high:
        raise InvalidInputError(
            f"{name} = {number:g} is outside the accepted range {low:g}..{high:g} "
            f"(the model was trained on {TRAINED_RANGE[0]:g}..{TRAINED_RANGE[1]:g})."
        )
    return number


def named_intensities(pairs: Iterable[tuple[str, object]]) -> dict[str, float]:
    """(name, intensity) pairs as a dict by canonical name; an AU named twice, in any spelling, is refused
    rather than silently keeping one of the two values."""
    values: dict[str, float] = {}
    spelled: dict[str, str] = {}
    for name, value in pairs:
        au = canonical_name(name)
        if au in values:
            raise InvalidInputError(f"{au} is given twice ({spelled[au]!r} and {name.strip()!r}); give each AU once.")
        values[au], spelled[au] = check_intensity(au, value), name.strip()
    return values


def parse_au_string(text: str) -> dict[str, float]:
    """Parse 'AU6=2.5, AU12=5' (also 'AU6:2.5 AU12:5') into a dict; '' or 'neutral' means no AU."""
    if text.strip().lower() == "neutral":
        return {}
    pairs = []
    for item in text.replace(",", " ").replace(";", " ").split():
        name, sep, number = item.replace(":", "=").partition("=")
        if not sep:
            raise InvalidInputError(f"Cannot read {item!r}: write AUs as NAME=VALUE, e.g. 'AU6=2.5, AU12=5'.")
        try:
            pairs.append((name, float(number)))
        except ValueError:
            raise InvalidInputError(f"Cannot read {item!r}: {number!r} is not a number.") from None
    return named_intensities(pairs)


def au_dict(values: AUValues | None) -> dict[str, float]:
    """All twelve AUs by name, in model order, from a dict, a list of 12 numbers or an 'AU6=2.5' string.

    AUs not mentioned are 0 (absent).
    """
    if values is None:
        values = {}
    if isinstance(values, str):
        values = parse_au_string(values)
    if isinstance(values, Mapping):
        given = named_intensities((str(name), value) for name, value in values.items())
        return {name: given.get(name, 0.0) for name in AU_NAMES}
    try:
        values = list(values)
    except TypeError:
        raise InvalidInputError("AU values must be 'AU12=3' text, a dict or a list of twelve numbers, "
                                f"got {type(values).__name__}.") from None
    if len(values) != NUM_AUS:
        raise InvalidInputError(f"Expected {NUM_AUS} AU values in the order {', '.join(AU_NAMES)}; got {len(values)}.")
    return {name: check_intensity(name, v) for name, v in zip(AU_NAMES, values)}


def au_vector(values: AUValues | None) -> list[float]:
    """The model's input: twelve intensities in ACTION_UNITS order."""
    return list(au_dict(values).values())


def format_aus(values: AUValues | None) -> str:
    """The non-zero AUs as 'AU6=2.5, AU12=5' (the form parse_au_string reads); 'neutral' when none."""
    active = [f"{name}={value:g}" for name, value in au_dict(values).items() if value != 0]
    return ", ".join(active) if active else "neutral"
