"""A photo edit, timed through the Studio as the page, the command line and the API run it: the photo made
ready (detect, read the AUs, crop, landmarks, parse), one edit, one preview (what a slider drag shows) and
the paste back into the photo. Measures, never asserts.

With the tiny models of `--random-weights` on the CPU, or with MagicFace's full-size layout on CUDA
(full_size_edit_studio).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..edit_settings import EDIT_SPEC, EditSettings
from ..engine.previews import PREVIEW_STEPS
from ..faces.au_reader import AUReader
from ..faces.detection import default_providers
from ..faces.embedder import FaceEmbedder
from ..faces.photos import Photo
from ..hub.model_sources import FACE_PARSER_FILE
from ..standins import full_size
from ..standins.full_size_reader import write_full_size_reader
from ..standins.tiny_face_models import write_model_pack
from ..standins.tiny_face_parser import write_face_parser
from ..studio import Studio
from .reading import no_sync
from .table import Row, median_ms

SMILE = {"AU6": 2.0, "AU12": 3.0}  # the AUs asked for (targets, as the sliders set them)


def full_size_edit_studio(folder: Path, device: str, dtype: torch.dtype) -> Studio:
    """A Studio whose photo edit is MagicFace in its full-size layout (random weights, on `device`). The photo
    is read by the tiny stand-in detector and landmarks (their cost is not buffalo_l's), a ResNet-18 of
    LibreFace's size and the released BiSeNet's architecture (random weights); generation, if asked, runs the
    full-size random FineFace pipelines."""
    folder = Path(folder)
    face_pack = folder / "insightface"
    write_model_pack(face_pack)
    reader = write_full_size_reader(folder / "au_reader.onnx")
    parser = write_face_parser(folder / FACE_PARSER_FILE)
    providers = default_providers(device)  # as Studio.from_pretrained puts the face models
    return Studio(
        lambda: full_size.text_pipeline(device, dtype),
        lambda: full_size.identity_pipeline(device, dtype),
        lambda: FaceEmbedder(root=face_pack, providers=providers),
        lambda: AUReader(model=reader, face_pack=face_pack, providers=providers),
        lambda: full_size.edit_pipeline(device, dtype),
        lambda: parser,
    )


def edit_rows(studio: Studio, photo: Photo, steps: int | None, sync: Callable[[], None],
              repeats: int = 3) -> list[Row]:
    """Times of preparing `photo`, of one edit at `steps` (None: the app's default) and of its parts, of
    one preview and of the paste back. Each is measured after a warm-up call (the first call at a size pays
    for kernels and, here, for loading the models); the cheap ones are medians of `repeats`."""
    steps = EDIT_SPEC["num_inference_steps"].default if steps is None else steps
    start = time.perf_counter()
    prepared = studio.read_for_edit(photo)  # loads the AU reader, the landmarks and the face parser
    first_read = (time.perf_counter() - start) * 1000
    prepare = median_ms(lambda: studio.read_for_edit(photo), repeats, sync)
    height, width = prepared.original.shape[:2]

    def settings(count: int) -> EditSettings:
        return EditSettings.create(prepared.aus_read, SMILE, num_inference_steps=count)

    studio.edit(prepared, settings(1))  # warm-up: loads the pipeline, then one step at the crop's size
    step_ends: list[float] = []

    def on_step(step: int, total: int) -> None:
        sync()
        step_ends.append(time.perf_counter())

    sync()
    start = time.perf_counter()
    studio.edit(prepared, settings(steps), on_step)
    sync()
    end = time.perf_counter()
    preview = median_ms(lambda: studio.edit_preview(prepared, settings(steps)), repeats, sync)
    paste = median_ms(lambda: prepared.paste(prepared.source), repeats, no_sync)  # numpy and OpenCV alone

    photo_note = f"{width}x{height} photo"
    rows = [
        ("edit: preparing the photo, first call (loads the face models and the parser), ms", first_read,
         photo_note),
        ("edit: preparing the photo (detect, read AUs, crop, landmarks, parse), ms", prepare,
         f"median of {repeats}, {photo_note}"),
        ("edit: one edit, s", end - start, f"{steps} steps, 512 px crop, pasted into the {photo_note}"),
    ]
    if len(step_ends) > 1:  # the steps after the first: the first one's interval holds the work before the loop
        per_step = statistics.median(np.diff(step_ends)) * 1000
        rows += [
            ("edit: per denoising step, ms", per_step,
             "median between step callbacks (each after a sync); a guidance batch of 2 with the ID features"),
            ("edit: before the first step (prompt, two VAE encodes, the ID UNet's pass), ms",
             (step_ends[0] - start) * 1000 - per_step, "the first step's callback less one step"),
            ("edit: after the last step (VAE decode, paste, metadata), ms", (end - step_ends[-1]) * 1000, ""),
        ]
    return rows + [
        ("edit preview (TAESD decode, pasted, shown at display size), ms", preview,
         f"median of {repeats}, {min(PREVIEW_STEPS, steps)} steps"),
        ("edit: pasting the crop back into the photo, ms", paste, f"median of {repeats}, {photo_note}"),
    ]
