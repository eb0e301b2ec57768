"""`fineface-ui batch SETTINGS.jsonl --out DIR`: one image per line of settings, written as a Hugging Face
`imagefolder` dataset (images plus metadata.jsonl with each image's settings and the AUs read back).

A line holds the fields of the HTTP API's /generate (prompt, aus, seed, steps, ...), and optionally
"photo": the path of a face photo (relative to the settings file), which selects the identity pipeline.
A bad line is reported with its number and skipped; the others are made. Resumable and shared between
processes like the evaluation (sharing.py).
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..errors import FineFaceError, InvalidInputError, NoFaceError
from ..hub.pinned import sha256_of
from ..png_info import save_png
from ..settings import GenerationSettings, is_au_list
from ..studio import Studio
from .sharing import Workers, append_rows, merge_rows, part_file
from .studios import stand_in_studio, studio_on

METADATA = "metadata"  # datasets' imagefolder loader reads metadata.jsonl beside the images


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, as editors show it
    settings: GenerationSettings
    photo: Path | None

    @functools.cached_property
    def photo_sha256(self) -> str | None:
        """The photo as the metadata records it: hashed once, read by both the resume check and the row."""
        return sha256_of(self.photo) if self.photo is not None else None

    @property
    def file_name(self) -> str:
        return f"images/line-{self.number:06d}.png"


def parse_line(number: int, text: str, folder: Path) -> Line:
    """One line of the settings file as a request; InvalidInputError says what is wrong with it."""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"not valid JSON ({error.msg}, column {error.colno})") from None
    if not isinstance(values, dict):
        raise InvalidInputError(f"a line must be a JSON object, got {type(values).__name__}")
    photo = values.pop("photo", None)
    if photo is not None:
        if not isinstance(photo, str):
            raise InvalidInputError("photo must be the path of a face photo")
        photo = folder / photo
        if not photo.is_file():
            raise InvalidInputError(f"the photo {photo.name} does not exist (paths are relative to the settings file)")
    aus = values.pop("aus", None)
    if is_au_list(aus):
        raise InvalidInputError("aus must be one AU setting: one image per line")
    return Line(number, GenerationSettings.create(values.pop("prompt", ""), aus, **values), photo)


Problem = tuple[int, str]  # a line number and what is wrong with it


def read_lines(path: Path) -> tuple[list[Line], list[Problem]]:
    """The settings file's good lines, and the problem of each bad one."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a byte-order mark, as some editors write, is fine
    except OSError as error:
        raise InvalidInputError(f"Cannot read the settings file {Path(path).name}: {error.strerror}.") from None
    except UnicodeDecodeError as error:
        raise InvalidInputError(f"The settings file {Path(path).name} is not UTF-8 text ({error.reason} at byte "
                                f"{error.start}).") from None
    lines, problems = [], []
    # Split at line feeds only: JSON text may hold the other characters str.splitlines() breaks at.
    for number, content in enumerate(text.split("\n"), start=1):
        if not content.strip():
            continue
        try:
            lines.append(parse_line(number, content, Path(path).parent))
        except InvalidInputError as error:
            problems.append((number, str(error)))
    return lines, problems


def render(studio: Studio, line: Line, out: Path) -> dict[str, Any]:
    """Make one line's image and its metadata row; the photo is recorded by its sha256 only."""
    output = studio.generate(line.settings, photos=[line.photo] if line.photo is not None else []).output
    image, recorded = output.images[0], output.metadata_for(0)
    (out / "images").mkdir(parents=True, exist_ok=True)
    save_png(image, out / line.file_name, recorded)
    try:
        [reading] = studio.read_aus([image])
        measured = {name: round(value, 4) for name, value in reading.aus.items()}
    except NoFaceError:
        measured = None
    # The settings as the pipeline recorded them: the LoRA strength it really used, for one.
    settings = {name: recorded[name] for name in line.settings.as_dict()}
    return {"file_name": line.file_name, "line": line.number, **settings, "aus": recorded["aus"][0],
            "pipeline": recorded["pipeline"], "measured_aus": measured,
            "photo_sha256": line.photo_sha256}


def made_from(row: dict[str, Any] | None, line: Line) -> bool:
    """Whether a metadata row is this line's image: a line edited since is made again."""
    if row is None:
        return False
    asked = {**line.settings.as_dict(), "aus": dict(line.settings.aus[0])}
    # The row has the LoRA strength the pipeline used: its own when the line gives none, none without a LoRA
    # (the identity pipeline).
    lora_scale = asked.pop("lora_scale")
    if lora_scale is not None and line.photo is None and row.get("lora_scale") != lora_scale:
        return False
    return row.get("photo_sha256") == line.photo_sha256 and all(row.get(name) == value for name, value in asked.items())


def run_batch(settings_file: Path, out: Path, random_weights: bool = False) -> list[Problem]:
    """Make every good line not made yet; the main process returns the problems of all processes (bad lines,
    lines that failed), by line number; the others return none."""
    out = Path(out)
    lines, bad_lines = read_lines(settings_file)
    with tempfile.TemporaryDirectory(prefix="fineface-batch-") as scratch:
        stand_ins = stand_in_studio(random_weights, Path(scratch))
        workers = Workers()
        studio = stand_ins or studio_on(workers.device)
        order = [line.number for line in lines]
        rows = workers.rows_at_start(out, METADATA, "line", order)
        made = {row["line"]: row for row in rows if (out / row["file_name"]).is_file()}
        mine = workers.share([line for line in lines if not made_from(made.get(line.number), line)])
        failed = []
        for line in tqdm(mine, desc=f"batch (process {workers.rank + 1} of {workers.count})", unit="image"):
            try:
                append_rows(part_file(out, METADATA, workers.rank), [render(studio, line, out)])
            except FineFaceError as error:
                failed.append((line.number, str(error)))
        failed = workers.gather(failed)
    if not workers.is_main:
        return []
    kept = {row["file_name"] for row in merge_rows(out, METADATA, "line", order)}
    for image in (out / "images").glob("line-*.png"):  # the images of lines no longer in the file
        if f"images/{image.name}" not in kept:
            image.unlink()
    return sorted(bad_lines + failed)
