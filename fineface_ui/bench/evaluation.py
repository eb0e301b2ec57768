"""`fineface-ui eval`, measured: images per second of the evaluation's own loop (evaluate.Evaluation: a prompt's
cases rendered in batches that share its seed, each PNG saved with its settings, its AUs read back, its CLIP
embedding compared with the prompt's neutral image), and how that time splits between rendering, reading the
AUs and CLIP. Measures, never asserts.

On the GPU: the full-size SD 2.1-base pipeline (standins/full_size.py), `full_size_studio` for its AU reader and
standins/full_size_clip.py for CLIP.
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from ..engine.pipeline import FineFacePipeline
from ..errors import InvalidInputError
from ..evaluation.clip_similarity import ClipImageEncoder
from ..evaluation.evaluate import RESULTS, EvalOptions, Evaluation, Models, batches
from ..evaluation.protocol import paper_cases
from ..evaluation.sharing import Workers, merge_rows
from ..faces.au_reader import AUReader
from ..settings import SPEC
from ..standins.full_size_reader import write_full_size_reader
from ..standins.tiny_face_models import write_model_pack
from ..studio import Studio
from .table import Row


class _Timed:
    """Stands in for `target`, adding the seconds its `methods` take (the device's work included) to `seconds`;
    everything else is the target's own."""

    def __init__(self, target: Any, methods: tuple[str, ...], seconds: dict[str, float],
                 sync: Callable[[], None]) -> None:
        self._target, self._methods, self._seconds, self._sync = target, methods, seconds, sync

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name not in self._methods:
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._sync()
            start = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:  # a read that finds no face raises, and the evaluation goes on: its time counts
                self._sync()
                self._seconds[name] += time.perf_counter() - start

        return timed


def _only_the_text_pipeline() -> Any:
    raise InvalidInputError("The evaluation benchmark renders with the text pipeline alone.")


def full_size_studio(pipe: FineFacePipeline, folder: Path) -> Studio:
    """What an sd21 evaluation loads: `pipe`, and a ResNet-18 of LibreFace's size after the tiny stand-in detector
    (bench/reading.py's reader), written to `folder`."""
    write_model_pack(folder / "faces")
    reader = AUReader(model=write_full_size_reader(folder / "resnet18.onnx"), face_pack=folder / "faces")
    return Studio(lambda: pipe, _only_the_text_pipeline, _only_the_text_pipeline, lambda: reader)


def eval_rows(studio: Studio, clip: ClipImageEncoder, limit: int, sync: Callable[[], None] = lambda: None,
              ) -> list[Row]:
    """The protocol's cases in a full run's order and batches (the first prompt's, 8 at a time, at eval's
    defaults): `limit` of them and their neutral image to warm up, then the next `limit` timed."""
    options = EvalOptions()
    cases = paper_cases()
    warm_up, timed = cases[:limit], cases[limit:2 * limit]
    seconds: dict[str, float] = defaultdict(float)
    models = Models(_Timed(studio, ("generate", "read_aus"), seconds, sync), _Timed(clip, ("embed",), seconds, sync))
    with tempfile.TemporaryDirectory(prefix="fineface-bench-eval-") as folder:
        # One Evaluation, as in a run: the neutral image's embedding is made once and kept.
        evaluation = Evaluation(options, Path(folder), models, Workers())
        sync()
        start = time.perf_counter()
        evaluation.run(warm_up)
        sync()
        first = time.perf_counter() - start
        seconds.clear()
        start = time.perf_counter()
        evaluation.run(timed)
        sync()
        total = time.perf_counter() - start
        rows = merge_rows(Path(folder), RESULTS, "case", [case.case_id for case in timed])
    faces = sum(row["face"] is not None for row in rows)
    sizes = "+".join(str(len(batch)) for batch in batches(timed, options.batch_size))
    what = (f"{len(timed)} cases in batches of {sizes}, {options.num_inference_steps} steps, "
            f"{SPEC['width'].default}x{SPEC['height'].default}, after {len(warm_up)} and their neutral image")
    per_image = 1000 / len(timed)
    rest = total - sum(seconds.values())
    return [
        ("evaluation: images per second (render, save the PNG, read the AUs, CLIP-I)", len(timed) / total, what),
        ("evaluation, first run: images per second", (len(warm_up) + 1) / first,
         f"{len(warm_up)} cases and their neutral image (rendered alone), first calls included"),
        ("evaluation: rendering, ms per image", seconds["generate"] * per_image, "the pipeline call, images decoded"),
        ("evaluation: reading the AUs, ms per image", seconds["read_aus"] * per_image,
         f"a face found in {faces} of {len(timed)}: the AU network ran on those only"),
        ("evaluation: CLIP embeddings, ms per image", seconds["embed"] * per_image, clip.source["repo"]),
        ("evaluation: the rest, ms per image", rest * per_image, "PNGs written with their settings, rows"),
    ]
