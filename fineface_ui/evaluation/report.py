"""An evaluation's report folder: REPORT.md (our numbers beside the paper's Table 1, per-AU and
per-intensity tables, what made them), summary.json (the same numbers, for --compare), and two plots."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..aus import ACTION_UNITS
from ..errors import InvalidInputError
from ..png_info import read_settings
from .protocol import COMBINATION, INTENSITIES, SINGLE
from .scoring import GROUPS, PAPER, summarize

SUMMARY, REPORT = "summary.json", "REPORT.md"
CALIBRATION_PLOT, CLIP_PLOT = "calibration.png", "clip_i_histogram.png"
GROUP_TITLES = {SINGLE: "Individual AUs", COMBINATION: "AU combinations"}
DEFINITION = (
    "**AU MSE** (the paper's Eq. 3): per image, the sum over the twelve AUs of (intensity asked - intensity "
    "read)^2, read with the AU reader on LibreFace's 0..5 scale; then the mean over the images of the group. "
    "Images where no face was found are left out and counted. The squared form is the one on Table 1's scale "
    "(a neutral face for an AU asked at 1..5 scores 11 on average). Also given: the mean unsquared distance "
    "(Eq. 3 read literally) and the mean squared error per AU (AU MSE / 12). **CLIP-I** (Eq. 4): cosine "
    "similarity of the CLIP image embeddings of each image and of its prompt's neutral image (same prompt "
    "and seed, all AUs 0), averaged over the images of the group."
)


def _number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def rendered_with(out: Path, neutral: list[dict[str, Any]]) -> dict[str, Any]:
    """How the images were rendered, as their PNGs record it."""
    stored = read_settings(Path(out) / neutral[0]["image"])
    return {key: stored.get(key) for key in ("pipeline", "device", "dtype", "lora_scale")}


def write_report(out: Path, rows: list[dict[str, Any]], neutral: list[dict[str, Any]], options: Any,
                 setup: dict[str, Any], command: str, processes: int) -> Path:
    """Write summary.json, the plots and REPORT.md into `out`; returns REPORT.md's path. `setup`: the models'
    revisions, the reader's and CLIP's provenance, the library versions."""
    out = Path(out)
    summary = {
        "summary": summarize(rows),
        "options": options.recorded(),
        **setup,
        "rendered_with": rendered_with(out, neutral),
        "command": command,
        "processes": processes,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    _plot_calibration(summary["summary"]["calibration"], out / CALIBRATION_PLOT)
    _plot_clip_i(rows, out / CLIP_PLOT)
    (out / REPORT).write_text(_markdown(summary, options.random_weights))
    return out / REPORT


def _markdown(summary: dict[str, Any], random_weights: bool) -> str:
    numbers, rendering = summary["summary"], summary["rendered_with"]
    groups = numbers["groups"]
    lines = ["# FineFace evaluation", ""]
    if random_weights:
        lines += ["**Made with --random-weights: tiny random models, a stand-in AU reader and a tiny CLIP. These "
                  "numbers only show that the evaluation runs; they mean nothing about FineFace.**", ""]
    lines += [
        f"`{summary['command']}` ({summary['processes']} process(es), {summary['written']})", "",
        "## Table 1", "",
        "| | Individual AU MSE ↓ | Individual CLIP-I ↑ | Combination AU MSE ↓ | Combination CLIP-I ↑ |",
        "|---|---|---|---|---|",
        "| FineFace, the paper (1,650 images) | " + " | ".join(
            f"{PAPER[group]['au_mse']:.2f} | {PAPER[group]['clip_i']:.2f}" for group in GROUPS) + " |",
        "| This run | " + " | ".join(
            f"{_number(groups[group]['au_mse'])} | {_number(groups[group]['clip_i'])}" for group in GROUPS) + " |",
        "",
        "| group | images | no face found | AU MSE | mean distance | MSE per AU | CLIP-I |",
        "|---|---|---|---|---|---|---|",
        *(f"| {GROUP_TITLES[group]} | {g['images']} | {g['no_face']} | {_number(g['au_mse'])} | "
          f"{_number(g['au_distance'])} | {_number(g['au_mse_per_au'], 3)} | {_number(g['clip_i'], 3)} |"
          for group, g in groups.items()),
        "", DEFINITION, "",
        "## Individual AUs, per AU", "",
        "AU MSE of the images that ask for the AU alone, and the mean intensity read of that AU at each "
        "intensity asked (a perfect model reads back 1, 2, 3, 4, 5).", "",
        "| AU | | AU MSE | " + " | ".join(f"read at {level}" for level in INTENSITIES) + " |",
        "|---|---|---|" + "---|" * len(INTENSITIES),
        *(f"| {au.name} | {au.facs_name} | {_number(numbers['per_au'][au.name])} | " + " | ".join(
            _number(numbers["calibration"][au.name][str(level)]) for level in INTENSITIES) + " |"
          for au in ACTION_UNITS),
        "", "## Individual AUs, per intensity asked", "",
        "| intensity | " + " | ".join(str(level) for level in INTENSITIES) + " |",
        "|---|" + "---|" * len(INTENSITIES),
        "| AU MSE | " + " | ".join(_number(numbers["per_intensity"][str(level)]) for level in INTENSITIES) + " |",
        "", f"![Intensity read against intensity asked, per AU]({CALIBRATION_PLOT})", "",
        f"![CLIP-I of each image against its neutral image]({CLIP_PLOT})", "",
        "## What made these numbers", "",
        f"- Options: `{json.dumps(summary['options'])}`",
        f"- Pipeline: {rendering['pipeline']} on {rendering['device']} ({rendering['dtype']}), LoRA strength "
        f"{rendering['lora_scale']}",
        *(f"- {variable}: {model['repo']} @ {model['revision']}" for variable, model in summary["models"].items()),
        f"- AU reader: {summary['au_reader']['file']}, sha256 {summary['au_reader']['sha256']}",
        f"- CLIP: {summary['clip']['repo']} @ {summary['clip']['revision']}",
        f"- Versions: {', '.join(f'{name} {version}' for name, version in summary['versions'].items())}",
        "", "Every image is in images/ with its settings in the PNG; results.jsonl has one row per image "
        "(settings, AUs read, CLIP-I), neutral.jsonl the reference images.", "",
    ]
    return "\n".join(lines)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed
    import matplotlib.pyplot as plt

    return plt


def _plot_calibration(calibration: dict[str, dict[str, float | None]], path: Path) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(3, 4, figsize=(12, 9), sharex=True, sharey=True)
    for axis, au in zip(axes.flat, ACTION_UNITS, strict=True):
        points = [(level, calibration[au.name][str(level)]) for level in INTENSITIES]
        points = [(level, value) for level, value in points if value is not None]
        axis.plot([0, 5], [0, 5], color="0.75", linestyle="--", linewidth=1)
        if points:
            axis.plot(*zip(*points), marker="o")
        axis.set_title(f"{au.name} {au.facs_name}", fontsize=9)
        axis.set_xlim(0, 5.3)
        axis.set_ylim(0, 5.3)
    figure.supxlabel("intensity asked")
    figure.supylabel("intensity read (mean)")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _plot_clip_i(rows: list[dict[str, Any]], path: Path) -> None:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4))
    for group in GROUPS:
        values = [row["clip_i"] for row in rows if row["group"] == group]
        if values:
            axis.hist(values, bins=20, range=(min(0.0, min(values)), 1.0), alpha=0.6, label=GROUP_TITLES[group])
    axis.set_xlabel("CLIP-I (cosine similarity with the neutral image)")
    axis.set_ylabel("images")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def compare(ours: Path, other: Path) -> str:
    """The differences between two report folders: headline numbers, per AU, and what made them."""
    mine, theirs = read_summary(ours), read_summary(other)
    lines = [f"{'':28}{'this':>10}{'other':>10}{'change':>10}"]

    def row(label: str, a: float | None, b: float | None) -> None:
        change = f"{a - b:+10.3f}" if a is not None and b is not None else f"{'':>10}"
        lines.append(f"{label:28}{_number(a, 3):>10}{_number(b, 3):>10}{change}")

    for group in GROUPS:
        for metric in ("au_mse", "clip_i"):
            row(f"{GROUP_TITLES[group]} {metric}", mine["summary"]["groups"][group][metric],
                theirs["summary"]["groups"].get(group, {}).get(metric))
    for name, value in mine["summary"]["per_au"].items():
        row(f"  {name} AU MSE", value, theirs["summary"]["per_au"].get(name))
    for key in ("options", "models", "au_reader", "clip", "versions", "rendered_with"):
        for name in sorted(set(mine.get(key, {})) | set(theirs.get(key, {}))):
            this, that = mine.get(key, {}).get(name), theirs.get(key, {}).get(name)
            if this != that:
                lines.append(f"{key} {name}: this {json.dumps(this)}, other {json.dumps(that)}")
    return "\n".join(lines)


def read_summary(folder: Path) -> dict[str, Any]:
    """An evaluation folder's summary.json; InvalidInputError when the folder is not one."""
    try:
        summary = json.loads((Path(folder) / SUMMARY).read_text())
    except (OSError, ValueError):
        summary = None
    numbers = summary.get("summary") if isinstance(summary, dict) else None
    if not isinstance(numbers, dict) or not all(isinstance(numbers.get(key), dict) for key in ("groups", "per_au")):
        raise InvalidInputError(f"{Path(folder).name} is not a finished evaluation: it has no readable {SUMMARY}.")
    return summary
