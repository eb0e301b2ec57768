"""Expressions read on the page (the AU reader): copying one from a photo onto the sliders, and measuring
each result, sweep frame and photo edit beside what the sliders asked for.

Measuring runs in an event of its own after the image is shown, outside the GPU slot, so the image
never waits for it and the next render does not queue behind it.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from ..aus import AU_NAMES, format_aus
from ..errors import FineFaceError
from ..faces.au_reader import AUReading
from ..faces.embedder import draw_face_box
from ..keyframes import Motion
from ..png_info import read_settings
from .editing import edit_download
from .handlers import download_update, own_photos
from .rendering import Backend
from .session import Result, Session

READ, ASKED = "read from the image", "asked for"
READ_FROM_PHOTO, READ_FROM_EDIT = "read from the photo", "read back from the edit"
RANDOM_NOTE = " The reader is a random stand-in (demo mode): its values mean nothing."


def copied_aus(reading: AUReading) -> list[float]:
    """The sliders' values for a reading: one decimal, as the sliders step."""
    return [round(reading.aus[name], 1) for name in AU_NAMES]


def copy_note(backend: Backend, reading: AUReading) -> str:
    others = f" (the largest of {reading.face.face_count} faces)" if reading.face.face_count > 1 else ""
    aus = format_aus(dict(zip(AU_NAMES, copied_aus(reading))))
    random = RANDOM_NOTE if backend.studio.random_weights else ""
    return f"Expression copied from {reading.face.label}{others}: {aus}.{random}"


def read_one(backend: Backend, photo: Any) -> AUReading:
    [reading] = backend.read_aus([photo])
    return reading


def copy_from_reference(backend: Backend, reference: str | None) -> list[Any]:
    """The sliders set to the expression of a reference photo, the preset cleared, a note, and the photo
    with the face read boxed. The upload is deleted from Gradio's cache once read (the boxed copy shown
    stays there as long as the face photos' boxed copies do); no face: an error, sliders kept."""
    if reference is None:
        return [gr.skip()] * (len(AU_NAMES) + 3)
    with backend.outputs.holding([reference]):
        reading = read_one(backend, reference)
        boxed = draw_face_box(reference, reading.face)
    return [*copied_aus(reading), None, copy_note(backend, reading), boxed]


def copy_from_face_photo(backend: Backend, state: Session, photo_paths: list[str] | None) -> list[Any]:
    """The sliders set to the expression of the first face photo, the preset cleared, and a note."""
    photos = own_photos(backend, state, photo_paths)
    if not photos:
        raise gr.Error("Add a face photo first: its expression is what gets copied.", print_exception=False)
    reading = read_one(backend, photos[0])
    return [*copied_aus(reading), None, copy_note(backend, reading)]


def record_reading(backend: Backend, metadata: dict[str, Any], image: Any, what: str) -> tuple[Any, ...] | None:
    """Read `image` back into `metadata` (`measured_aus` and the reader's `au_reader`), once. None when read;
    else the chart hidden, a note saying why (no face in `what`, a missing reader) and the download and
    settings unchanged."""
    if "measured_aus" in metadata:
        return None
    try:
        reading = read_one(backend, image)
    except gr.Error as error:
        reason = f"no face was found in {what}" if "No face was found" in error.message else error.message
        return gr.update(visible=False), gr.update(value=f"Not measured: {reason}.", visible=True), gr.skip(), \
            gr.skip()
    metadata["measured_aus"] = {name: round(value, 2) for name, value in reading.aus.items()}
    metadata["au_reader"] = backend.studio.au_reader().provenance()
    return None


def measure_result(backend: Backend, state: Session, measure: bool) -> tuple[Any, Any, Any, Any]:
    """The newest result read back: a chart of asked vs read for each AU, a note, and its download and
    settings with `measured_aus` added. Unchanged when measuring is off or there is no result."""
    if not measure or not state.history:
        return gr.update(visible=False), gr.update(visible=False), gr.skip(), gr.skip()
    result = state.history[0]
    unread = record_reading(backend, result.metadata, str(result.path), "this image")
    if unread is not None:
        return unread
    # A render that ended while this one was read owns the download and the settings shown now.
    newest = state.history and state.history[0] is result
    asked, measured = result.metadata["aus"][0], result.metadata["measured_aus"]
    rows = [(name, kind, float(values.get(name, 0.0))) for name in AU_NAMES
            for kind, values in ((ASKED, asked), (READ, measured))]
    note = "Each AU as asked for and as read back from the image by LibreFace's AU model."
    note += RANDOM_NOTE if backend.studio.random_weights else ""
    return (gr.update(value=pd.DataFrame(rows, columns=["AU", "kind", "intensity"]), visible=True),
            gr.update(value=note, visible=True), download_update(result) if newest else gr.skip(),
            result.metadata if newest else gr.skip())


def measure_sweep(backend: Backend, state: Session, measure: bool) -> Any:
    """The swept AU as asked for (x) and as read back from each frame (y), with the line where they agree."""
    frames, name = state.sweep_files[:-1], state.sweep_au  # the last file is the GIF
    if not measure or not frames or name is None:
        return gr.update(visible=False)
    rows = []
    for path in frames:
        try:
            asked = read_settings(path)["aus"][0][name]
            rows.append((asked, asked, ASKED))
            rows.append((asked, read_one(backend, str(path)).aus[name], READ))
        except (gr.Error, FineFaceError):  # a frame without a face, or deleted by a newer sweep: a gap
            continue
    return gr.update(value=pd.DataFrame(rows, columns=["asked", "read", "series"]), visible=True,
                     title=f"{name} asked for and read back: how linear the slider is")


def measure_animation(backend: Backend, state: Session, measure: bool) -> Any:
    """Each animated AU over time, as the keyframes ask for it and as read back from each frame."""
    frames = [path for path in state.animation_files if path.suffix == ".png"]
    if not measure or not frames:
        return gr.update(visible=False)
    try:
        stored = [read_settings(path) for path in frames]
    except FineFaceError:  # deleted by a newer animation meanwhile: that one's readout follows
        return gr.skip()
    asked = [(frame["animation"]["time"], frame["aus"][0]) for frame in stored]
    motion = stored[0]["animation"]
    # The AUs that move; a motion that holds still shows those it holds.
    moving = Motion.create(motion["keys"], motion["seconds"], motion["fps"], motion["easing"]).animated_aus() or \
        [name for name in AU_NAMES if asked[0][1][name]]
    rows = []
    for path, (time, aus) in zip(frames, asked):
        rows += [(time, aus[name], f"{name} {ASKED}") for name in moving]
        try:
            reading = read_one(backend, str(path))
        except (gr.Error, FineFaceError):  # no face in this frame: a gap in the read curves
            continue
        rows += [(time, reading.aus[name], f"{name} {READ}") for name in moving]
    return gr.update(value=pd.DataFrame(rows, columns=["time", "intensity", "series"]), visible=True,
                     title="The animated AUs over time (seconds): asked for and read back")


def edited_face(result: Result) -> np.ndarray:
    """The edited face cut out of an edit's PNG, with half its size around it: the reader reads the largest face
    it is given, and the face edited need not be the photo's largest."""
    x0, y0, x1, y1 = result.metadata["photo"]["face_box"]
    margin = max(x1 - x0, y1 - y0) // 2
    with Image.open(result.path) as image:
        return np.asarray(image.convert("RGB").crop((max(0, x0 - margin), max(0, y0 - margin),
                                                     min(image.width, x1 + margin), min(image.height, y1 + margin))))


def measure_edit(backend: Backend, state: Session, measure: bool) -> tuple[Any, Any, Any, Any]:
    """The newest photo edit read back: a chart of each AU as read from the photo, as asked for and as read back
    from the edited face, a note, and the edit's download and settings with `measured_aus` added."""
    edits = state.edits
    if not measure or not edits.history:
        return gr.update(visible=False), gr.update(visible=False), gr.skip(), gr.skip()
    result = edits.history[0]
    unread = record_reading(backend, result.metadata, edited_face(result), "the edit")
    if unread is not None:
        return unread
    newest = edits.history and edits.history[0] is result  # else a newer edit owns the download and settings
    metadata = result.metadata
    kinds = ((READ_FROM_PHOTO, metadata["aus_read"]), (ASKED, metadata["aus"][0]),
             (READ_FROM_EDIT, metadata["measured_aus"]))
    rows = [(name, kind, float(values[name])) for name in AU_NAMES for kind, values in kinds]
    note = ("Each AU as read from the photo, as asked for, and as read back from the edited face by LibreFace's "
            "AU model.")
    note += RANDOM_NOTE if backend.studio.random_weights else ""
    return (gr.update(value=pd.DataFrame(rows, columns=["AU", "kind", "intensity"]), visible=True),
            gr.update(value=note, visible=True), edit_download(result) if newest else gr.skip(),
            metadata if newest else gr.skip())
