"""The paper's two numbers from an evaluation's rows: AU MSE (Eq. 3) and CLIP-I (Eq. 4), overall and broken
down per AU and per intensity.

AU MSE, as implemented: for each image, the squared Euclidean distance between the twelve AUs asked for
and the twelve read back (LibreFace, 0..5), i.e. the sum over the twelve AUs of the squared differences;
then the mean of that over the images of a group. Eq. 3 writes a 1/n mean over conditions of ||.||_2; the
squared form is the one whose scale matches Table 1 (asking for intensity 1..5 and getting a neutral face
scores about 11, the paper's SD baseline 6.98, FineFace 4.71). The report also gives the mean unsquared
distance and the mean squared error per AU (the first divided by twelve), so any reading can be compared.
"""

from __future__ import annotations

import math
from statistics import fmean
from typing import Any, Iterable, Mapping

from ..aus import AU_NAMES
from .protocol import COMBINATION, INTENSITIES, SINGLE

GROUPS = (SINGLE, COMBINATION)
# Table 1 of the paper, FineFace's row: 1,650 images, LibreFace's readings, CLIP ViT-L/14.
PAPER = {SINGLE: {"au_mse": 4.71, "clip_i": 0.92}, COMBINATION: {"au_mse": 7.54, "clip_i": 0.83}}


def squared_error(requested: Mapping[str, float], measured: Mapping[str, float]) -> float:
    """The sum over the twelve AUs of (asked - read)^2: one image's term of AU MSE."""
    return sum((requested[name] - measured[name]) ** 2 for name in AU_NAMES)


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return fmean(values) if values else None


def group_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """AU MSE and CLIP-I of one group's rows; images without a face found are counted, not scored."""
    measured = [row for row in rows if row["measured"] is not None]
    errors = [row["squared_error"] for row in measured]
    au_mse = _mean(errors)
    return {
        "images": len(rows),
        "no_face": len(rows) - len(measured),
        "au_mse": au_mse,
        "au_distance": _mean(math.sqrt(error) for error in errors),
        "au_mse_per_au": au_mse / len(AU_NAMES) if au_mse is not None else None,
        "clip_i": _mean(row["clip_i"] for row in rows),
    }


def _asked(row: dict[str, Any]) -> tuple[str, float]:
    """The one AU a single-AU row asks for, and its intensity."""
    return next((name, value) for name, value in row["requested"].items() if value)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the report shows: per group, per AU and per intensity (single AUs), and calibration."""
    singles = [row for row in rows if row["group"] == SINGLE and row["measured"] is not None]
    per_au, calibration = {}, {}
    for name in AU_NAMES:
        asked = [row for row in singles if _asked(row)[0] == name]
        per_au[name] = _mean(row["squared_error"] for row in asked)
        calibration[name] = {str(level): _mean(row["measured"][name] for row in asked if _asked(row)[1] == level)
                             for level in INTENSITIES}
    per_intensity = {str(level): _mean(row["squared_error"] for row in singles if _asked(row)[1] == level)
                     for level in INTENSITIES}
    return {
        "groups": {group: group_summary([row for row in rows if row["group"] == group]) for group in GROUPS},
        "per_au": per_au,
        "per_intensity": per_intensity,
        "calibration": calibration,  # AU -> intensity asked -> mean intensity read of that AU
    }
