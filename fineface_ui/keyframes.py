"""An expression over time: AU settings at keyframes, the frames between them interpolated.

One text form, `0:neutral; 1:AU12=4; 2:happiness`, is what the page, the HTTP API and `--keys` take,
and what the metadata of every frame stores, so a motion can be read back and played again.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .aus import AU_NAMES, au_dict, check_number, format_aus, is_number, parse_au_string
from .errors import InvalidInputError
from .presets import PRESETS

KEYS_HELP = ("keyframes TIME:SETTING separated by `;`, times in seconds increasing from 0, each setting `neutral`, "
             "AUs such as `AU6=3,AU12=4` or a preset name, e.g. `0:neutral; 1:AU12=4; 2:happiness`")
MAX_KEYFRAMES = 64
FPS_RANGE = (1, 30)
FPS_RULE = f"a whole number from {FPS_RANGE[0]} to {FPS_RANGE[1]}"
DEFAULT_FPS = 12
DEFAULT_EASING = "linear"
MAX_SECONDS = 60.0
SECONDS_RULE = f"more than 0 and at most {MAX_SECONDS:g}"
# Each frame is a whole image to render: the cap bounds one request's GPU time and disk space.
MAX_FRAMES = 300
FRAMES_RULE = f"at most {MAX_FRAMES} frames (12 s at 24 fps is 289)"


def _smoothstep(fraction: float) -> float:
    """Starts and ends with zero slope, so the face settles into each keyframe instead of stopping dead."""
    return fraction * fraction * (3 - 2 * fraction)


# How the way between two keyframes is travelled: fraction of the time -> fraction of the change.
EASINGS: dict[str, Callable[[float], float]] = {"linear": lambda fraction: fraction, "ease": _smoothstep}

_PRESETS_BY_LOWER_NAME = {name.lower(): name for name in PRESETS}


@dataclass(frozen=True)
class Keyframe:
    time: float  # seconds from the start
    aus: dict[str, float]  # the whole setting at that time: all twelve AUs, model order


def parse_keyframes(text: str) -> tuple[Keyframe, ...]:
    """Keyframes from `0:neutral; 1:AU12=4` text (also one a line); InvalidInputError quoting a bad entry."""
    entries = [entry.strip() for entry in text.replace("\n", ";").split(";") if entry.strip()]
    _check_count(len(entries))  # before any entry is read, so a huge text is refused at once
    return _in_order(tuple(_parse_entry(entry) for entry in entries), entries)


def _parse_entry(entry: str) -> Keyframe:
    # The first colon only: 'AU6:2.5' is also an AU pair, and some preset names hold a colon ('Paper: AU4+25+26').
    time_text, colon, setting = entry.partition(":")
    if not colon:
        raise InvalidInputError(f"Keyframe {entry!r} has no colon. Write {KEYS_HELP}.")
    try:
        time = float(time_text)
    except ValueError:
        raise InvalidInputError(f"Keyframe {entry!r}: {time_text.strip()!r} is not a time in seconds "
                                "such as 0 or 1.5.") from None
    if not setting.strip():
        raise InvalidInputError(f"Keyframe {entry!r} has no setting after the colon: give `neutral`, "
                                "AUs such as `AU12=4` or a preset name.")
    return Keyframe(_check_time(time, f"Keyframe {entry!r}"), _setting_aus(setting.strip(), entry))


def _setting_aus(setting: str, entry: str) -> dict[str, float]:
    preset = _PRESETS_BY_LOWER_NAME.get(setting.lower())
    if preset is not None:
        return au_dict(PRESETS[preset])
    try:
        return au_dict(parse_au_string(setting))
    except InvalidInputError as error:
        raise InvalidInputError(f"Keyframe {entry!r}: {error} A setting may also be a preset name, such as "
                                "`happiness`.") from None


def _check_time(time: float, label: str) -> float:
    if not math.isfinite(time) or time < 0:
        raise InvalidInputError(f"{label}: the time must be a finite number of seconds, 0 or more; got {time!r}.")
    return time


def _checked_keyframe(key: Keyframe, position: int) -> Keyframe:
    """A Keyframe made in Python, checked as the text form is, its AUs made the whole twelve."""
    time = _check_time(check_number(f"The time of keyframe {position}", key.time), f"Keyframe {position}")
    try:
        return Keyframe(time, au_dict(key.aus))
    except InvalidInputError as error:
        raise InvalidInputError(f"Keyframe {position}: {error}") from None


def _check_count(count: int) -> None:
    if count > MAX_KEYFRAMES:
        raise InvalidInputError(f"{count} keyframes are too many; give at most {MAX_KEYFRAMES}.")


def _in_order(keys: tuple[Keyframe, ...], entries: Sequence[str]) -> tuple[Keyframe, ...]:
    """The keyframes if there is one or more and their times strictly increase; `entries` quote them."""
    if not keys:
        raise InvalidInputError("Give at least one keyframe such as `0:neutral; 1:AU12=4`.")
    for index in range(1, len(keys)):
        if keys[index].time <= keys[index - 1].time:
            raise InvalidInputError(
                f"Keyframe times must increase: keyframe {index + 1} ({entries[index]!r}) is at {keys[index].time:g} "
                f"s, not after keyframe {index} ({entries[index - 1]!r}) at {keys[index - 1].time:g} s.")
    return keys


def _keyframe_text(key: Keyframe) -> str:
    return f"{key.time:g}:{format_aus(key.aus)}"


def format_keyframes(keys: Sequence[Keyframe]) -> str:
    """The `0:neutral; 1:AU12=4` text that parses back to these keyframes (numbers to six digits, as format_aus)."""
    return "; ".join(_keyframe_text(key) for key in keys)


@dataclass(frozen=True)
class Motion:
    """A validated animation: keyframes, its length, frames per second and easing. Make it with Motion.create."""

    keys: tuple[Keyframe, ...]
    seconds: float
    fps: int
    easing: str

    @classmethod
    def create(cls, keys: str | Sequence[Keyframe], seconds: float | None = None, fps: int = DEFAULT_FPS,
               easing: str = DEFAULT_EASING) -> "Motion":
        """Validate everything, before any frame is rendered; `seconds` None or 0 means until the last keyframe."""
        if isinstance(keys, str):
            keys = parse_keyframes(keys)
        elif isinstance(keys, Sequence) and all(isinstance(key, Keyframe) for key in keys):
            _check_count(len(keys))
            keys = tuple(_checked_keyframe(key, position) for position, key in enumerate(keys, start=1))
            keys = _in_order(keys, [_keyframe_text(key) for key in keys])
        else:
            raise InvalidInputError(f"Keyframes must be text such as `0:neutral; 1:AU12=4` or a list of Keyframe, "
                                    f"got {type(keys).__name__}.")
        if not isinstance(easing, str) or easing not in EASINGS:
            raise InvalidInputError(f"Unknown easing {easing!r}; choose one of {', '.join(EASINGS)}.")
        fps_number = check_number("Frames per second", fps)
        if not (fps_number.is_integer() and FPS_RANGE[0] <= fps_number <= FPS_RANGE[1]):
            raise InvalidInputError(f"Frames per second must be {FPS_RULE}, got {fps!r}.")
        length = _length(keys, seconds)
        for position, key in enumerate(keys, start=1):
            if key.time > length:
                raise InvalidInputError(f"Keyframe {position} ({_keyframe_text(key)!r}) at {key.time:g} s is after the "
                                        f"end of the motion at {length:g} s: make the motion longer or drop it.")
        motion = cls(keys, length, int(fps_number), easing)
        if motion.frame_count > MAX_FRAMES:
            raise InvalidInputError(f"{length:g} s at {motion.fps} fps is {motion.frame_count} frames; the limit is "
                                    f"{FRAMES_RULE}. Make it shorter or lower the frames per second.")
        if motion.frame_count < 2:
            raise InvalidInputError(f"{length:g} s at {motion.fps} fps is a single frame; an animation needs two or "
                                    f"more: make it at least {1 / motion.fps:.3g} s long.")
        return motion

    @property
    def frame_count(self) -> int:
        """Frames about 1/fps apart from 0 to the length, both ends included: 1 s at 8 fps is 9 frames."""
        return round(self.seconds * self.fps) + 1

    def times(self) -> list[float]:
        """Each frame's time in seconds: spread evenly from 0 to exactly the length, so the last keyframe is
        reached whatever the length (1.04 s at 12 fps is 13 frames 0.0867 s apart, played at 12 fps)."""
        return [self.seconds * index / (self.frame_count - 1) for index in range(self.frame_count)]

    def frame_aus(self) -> list[dict[str, float]]:
        """Each frame's twelve AU values (to 3 decimals, more than a slider shows)."""
        return [self._aus_at(time) for time in self.times()]

    def _aus_at(self, time: float) -> dict[str, float]:
        """Before the first keyframe the first holds, after the last the last; between two, the eased mix."""
        after = bisect_right([key.time for key in self.keys], time)
        if after == 0 or after == len(self.keys):
            held = self.keys[0] if after == 0 else self.keys[-1]
            return {name: round(value, 3) for name, value in held.aus.items()}
        start, end = self.keys[after - 1], self.keys[after]
        weight = EASINGS[self.easing]((time - start.time) / (end.time - start.time))
        return {name: round(start.aus[name] + (end.aus[name] - start.aus[name]) * weight, 3) for name in AU_NAMES}

    def animated_aus(self) -> list[str]:
        """The AUs whose value changes during the motion, in model order: the ones worth plotting."""
        frames = self.frame_aus()
        return [name for name in AU_NAMES if len({frame[name] for frame in frames}) > 1]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the metadata of the frames and videos: enough to render the motion again."""
        return {"keys": format_keyframes(self.keys), "seconds": self.seconds, "fps": self.fps, "easing": self.easing,
                "frames": self.frame_count}


def _length(keys: Sequence[Keyframe], seconds: object) -> float:
    """The motion's length in seconds: `seconds`, or when None or 0 the last keyframe's time."""
    if seconds is None or (is_number(seconds) and seconds == 0):
        if keys[-1].time == 0:
            raise InvalidInputError(f"A single keyframe at 0 s needs a length: give the seconds ({SECONDS_RULE}).")
        label, seconds = "The length (the last keyframe's time)", keys[-1].time
    else:
        label = "The length"
    length = check_number(label, seconds)
    if not (math.isfinite(length) and 0 < length <= MAX_SECONDS):
        raise InvalidInputError(f"{label} must be {SECONDS_RULE} seconds, got {seconds!r}.")
    return length
