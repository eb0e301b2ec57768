"""`fineface-ui eval`: the paper's Table 1 protocol run on this app's pipelines, resumable and shared between
the processes of `accelerate launch`.

Per image: render (a prompt's cases in batches that share its seed), save the PNG with its settings, read
the AUs back (the AU reader) and compare CLIP embeddings with the prompt's neutral image. Rows go to part
files as they are done (sharing.py); the main process merges them and writes the report (report.py).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image
from tqdm.auto import tqdm

from ..errors import FineFaceError, InvalidInputError, NoFaceError
from ..hub.pinned import sha256_of
from ..hub.versions import library_versions
from ..png_info import save_png
from ..settings import SPEC, GenerationSettings
from ..studio import Studio
from .clip_similarity import ClipImageEncoder, clip_i
from .protocol import NEUTRAL, VARIANTS, Case, neutral_case, paper_cases
from .scoring import squared_error
from .sharing import Workers, append_rows, merge_rows, part_file
from .studios import stand_in_clip, stand_in_studio, studio_on

RESULTS, NEUTRAL_ROWS = "results", "neutral"
IMAGES = "images"


@dataclass(frozen=True)
class EvalOptions:
    """What decides an evaluation's numbers; a folder resumes only a run with the same options."""

    variant: str = "sd21"
    face: Path | None = None  # the identity photo of sd15-identity
    scheduler: str = SPEC["scheduler"].default
    num_inference_steps: int = SPEC["num_inference_steps"].default
    guidance_scale: float = SPEC["guidance_scale"].default
    lora_scale: float | None = None  # None: the strength the LoRA was trained with
    limit: int | None = None
    clip: str | None = None  # a CLIP repo id or folder; None: openai/clip-vit-large-patch14
    random_weights: bool = False
    batch_size: int = 8  # images per pipeline call (cases of one prompt)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise InvalidInputError(f"Unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}.")
        if (self.variant == "sd15-identity") != (self.face is not None):
            raise InvalidInputError("The sd15-identity variant needs a face photo (--face PHOTO), and only it "
                                    "takes one.")
        if self.limit is not None and self.limit < 1:
            raise InvalidInputError(f"--limit must be at least 1, got {self.limit}.")
        if not 1 <= self.batch_size <= 32:
            raise InvalidInputError(f"--batch-size must be 1 to 32, got {self.batch_size}.")
        if self.face is not None and not Path(self.face).is_file():
            raise InvalidInputError(f"The face photo {Path(self.face).name} does not exist.")

    def recorded(self) -> dict[str, Any]:
        """The options as run.json keeps them: the face photo by its sha256, never the photo or its path."""
        values = {**asdict(self), "face": sha256_of(self.face) if self.face is not None else None}
        return json.loads(json.dumps(values))


@dataclass
class Models:
    studio: Studio
    clip: ClipImageEncoder


def batches(cases: Sequence[Case], size: int) -> list[list[Case]]:
    """Consecutive cases of one prompt, at most `size` at a time: one pipeline call each. They depend only on
    the cases, so that any number of processes renders exactly the same batches."""
    groups: list[list[Case]] = []
    for case in cases:
        if groups and groups[-1][0].prompt_index == case.prompt_index and len(groups[-1]) < size:
            groups[-1].append(case)
        else:
            groups.append([case])
    return groups


class Evaluation:
    """One process's part of an evaluation into `out`."""

    def __init__(self, options: EvalOptions, out: Path, models: Models, workers: Workers) -> None:
        self.options, self.out, self.models, self.workers = options, Path(out), models, workers
        self._references: dict[int, torch.Tensor] = {}

    def run(self, cases: Sequence[Case]) -> None:
        """The neutral images first (CLIP-I's references), then the cases; each phase skips what is done."""
        neutrals = [neutral_case(index) for index in sorted({case.prompt_index for case in cases})]
        for stem, todo in ((NEUTRAL_ROWS, neutrals), (RESULTS, list(cases))):
            rows = self.workers.rows_at_start(self.out, stem, "case", [case.case_id for case in todo])
            # An image deleted since is made again (its new row replaces the old one when merged).
            done = {row["case"] for row in rows if (self.out / row["image"]).is_file()}
            work = self.workers.share(batches([case for case in todo if case.case_id not in done],
                                              1 if stem == NEUTRAL_ROWS else self.options.batch_size), size=len)
            label = f"{stem} (process {self.workers.rank + 1} of {self.workers.count})"
            with tqdm(total=sum(map(len, work)), desc=label, unit="image") as progress:
                for batch in work:
                    append_rows(part_file(self.out, stem, self.workers.rank), self._rows(batch))
                    progress.update(len(batch))
            self.workers.wait()

    def _rows(self, batch: list[Case]) -> list[dict[str, Any]]:
        first = batch[0]
        settings = GenerationSettings.create(
            first.prompt, [case.aus for case in batch], seed=first.seed, scheduler=self.options.scheduler,
            num_inference_steps=self.options.num_inference_steps, guidance_scale=self.options.guidance_scale,
            lora_scale=self.options.lora_scale)
        faces = [self.options.face] if self.options.face is not None else []
        output = self.models.studio.generate(settings, photos=faces).output
        # A neutral image is its own reference.
        similarities = ([1.0] * len(batch) if first.group == NEUTRAL
                        else clip_i(self._reference(first.prompt_index), self.models.clip.embed(output.images)))
        rows = []
        for index, (case, image, similarity) in enumerate(zip(batch, output.images, similarities, strict=True)):
            path = save_png(image, self._image_path(case), output.metadata_for(index))
            measured, face = self._read(image)
            rows.append({
                "case": case.case_id, "group": case.group, "prompt_index": case.prompt_index,
                "prompt": case.prompt, "seed": case.seed, "requested": case.aus, "measured": measured,
                "face": face, "clip_i": round(similarity, 6), "image": path.relative_to(self.out).as_posix(),
                "squared_error": None if measured is None else round(squared_error(case.aus, measured), 6),
            })
        return rows

    def _image_path(self, case: Case) -> Path:
        folder = self.out / IMAGES
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{case.case_id}.png"

    def _reference(self, prompt_index: int) -> torch.Tensor:
        """The CLIP embedding of the prompt's neutral image (made in the first phase, by any process)."""
        if prompt_index not in self._references:
            with Image.open(self._image_path(neutral_case(prompt_index))) as image:
                self._references[prompt_index] = self.models.clip.embed([image.convert("RGB")])[0]
        return self._references[prompt_index]

    def _read(self, image: Image.Image) -> tuple[dict[str, float] | None, dict[str, Any] | None]:
        """The AUs read from the rendered face, rounded as stored; (None, None) when no face is found."""
        try:
            [reading] = self.models.studio.read_aus([image])
        except NoFaceError:
            return None, None
        face = {"box": list(reading.face.box), "faces_found": reading.face.face_count}
        return {name: round(value, 4) for name, value in reading.aus.items()}, face


# Every case starts from its prompt seed's noise whatever its batch (batching changes at most float
# rounding), so a run that ran out of GPU memory may resume with smaller batches.
RESUMABLE_WITH_ANOTHER = {"batch_size"}


def setup_of(options: EvalOptions, models: Models) -> dict[str, Any]:
    """What the numbers depend on beyond the options: the models' revisions, the reader, CLIP, the libraries."""
    studio = models.studio
    pipeline = studio.identity_pipeline() if options.variant == "sd15-identity" else studio.text_pipeline()
    return {"models": pipeline.models, "au_reader": studio.au_reader().provenance(), "clip": models.clip.source,
            "versions": library_versions()}


def check_run_file(out: Path, run: dict[str, Any], workers: Workers) -> None:
    """Write run.json into a new folder; in a used one, refuse to mix runs with other options or models."""
    path = Path(out) / "run.json"
    if workers.is_main and not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run, indent=2) + "\n")
    workers.wait()
    kept = json.loads(path.read_text())
    differing = sorted(name for name in {**kept, **run} if name not in RESUMABLE_WITH_ANOTHER
                       and kept.get(name) != run.get(name))
    if differing:
        raise InvalidInputError(f"{Path(out).name} holds an evaluation with other options or models "
                                f"({', '.join(differing)}); resume it with the same, or give another --out.")


def evaluate(options: EvalOptions, out: Path, command: str) -> Path | None:
    """Run (or resume) the evaluation into `out`; the main process returns the report's path."""
    from .report import write_report

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="fineface-eval-") as scratch:
        studio = stand_in_studio(options.random_weights, Path(scratch))
        clip_folder = stand_in_clip(Path(scratch)) if options.random_weights else None
        workers = Workers()
        clip = (ClipImageEncoder.from_folder(clip_folder, workers.device) if clip_folder is not None
                else ClipImageEncoder.from_pretrained(options.clip, workers.device))
        models = Models(studio or studio_on(workers.device), clip)
        setup = setup_of(options, models)
        check_run_file(out, {**options.recorded(), **setup}, workers)
        cases = paper_cases(options.limit)
        Evaluation(options, out, models, workers).run(cases)
        if not workers.is_main:
            return None
        neutral_ids = sorted({neutral_case(case.prompt_index).case_id for case in cases})
        neutral = merge_rows(out, NEUTRAL_ROWS, "case", neutral_ids)
        rows = merge_rows(out, RESULTS, "case", [case.case_id for case in cases])
        if len(rows) < len(cases) or len(neutral) < len(neutral_ids):
            raise FineFaceError(f"{len(cases) + len(neutral_ids) - len(rows) - len(neutral)} images of "
                                f"{Path(out).name} have no results; run the same command again to make them.")
        return write_report(out, rows, neutral, options, setup, command, workers.count)
