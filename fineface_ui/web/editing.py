"""The Edit a photo tab's handlers: a photo dropped (or a face clicked in it) is read once into the session
(session.PhotoEdits); then each slider release edits the photo, shown as it forms, and each drag previews.

The sliders keep meaning absolute intensities: they start at the AUs read from the photo, rounded as a slider
shows them, and an AU left at its shown value keeps the exact value read, so an edit changes only the AUs moved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import gradio as gr
from PIL import Image

from ..aus import AU_NAMES
from ..edit_settings import EDIT_SPEC, EditSettings
from ..faces.edit_inputs import EditPhoto, Point
from ..faces.embedder import draw_face_box
from .named_download import named_link
from .rendering import Backend, Glimpse, Stopped, readable_errors
from .session import EditKey, Result, Session

EDIT_VALUES = (*AU_NAMES, *EDIT_SPEC)  # the tab's controls, named like what they set
RESULT_LABEL = "Edited photo"
PREVIEW_LABEL = "Preview: quick and rough, the full edit follows on release"
NO_PHOTO = ("Drop a photo: its largest face is found and its expression read, and the sliders start there. "
            "To edit another face, click it in the photo.")
NEED_PHOTO = "Drop a photo with a face first: the sliders then edit it."
LICENCES = ("Models: MagicFace's weights (Apache-2.0) on a Stable Diffusion 1.5 base (CreativeML OpenRAIL-M); "
            "InsightFace's face models, LibreFace's AU model and the BiSeNet face parser (trained on "
            "CelebAMask-HQ) are for non-commercial research only.")
RANDOM_NOTE = " The models are random stand-ins (demo mode): the values read and the edits mean nothing."
# What a new photo (or face) sets: the twelve AU sliders, the note, the photo with its face boxed, then the CLEARED
# outputs that showed the last face's edit (the result, the before/after, the download, the readout and its note,
# the settings).
CLEARED = 6
PHOTO_OUTPUTS = len(AU_NAMES) + 2 + CLEARED


def shown(value: float) -> float:
    """An intensity as a slider shows it (one decimal, its step)."""
    return round(value, 1)


def edit_settings(photo: EditPhoto, values: dict[str, Any]) -> EditSettings:
    """The tab's values as an edit of `photo`: an AU at its value read, as the slider shows it, keeps the exact
    value read."""
    read = photo.aus_read
    aus = {name: read[name] if values[name] == shown(read[name]) else values[name] for name in AU_NAMES}
    with readable_errors("Editing"):
        return EditSettings.create(read, aus, **{name: values[name] for name in EDIT_SPEC})


def photo_note(backend: Backend, photo: EditPhoto, clicked: bool) -> str:
    """Which face is edited, and the AUs read from it."""
    face = photo.face
    if face.face_count == 1:
        which = "One face found"
    elif clicked:
        which = f"The face you clicked, of {face.face_count} faces,"
    else:
        which = f"The largest of {face.face_count} faces (click another to edit it instead)"
    read = ", ".join(f"{name}={shown(value):g}" for name, value in photo.aus_read.items())
    random = RANDOM_NOTE if backend.studio.random_weights else ""
    return (f"**{which}** in {face.label}, boxed. **Read**: {read}. The sliders start at these values: move one "
            f"to edit the photo.{random}\n\n{LICENCES}")


def read_photo(backend: Backend, state: Session, upload: str | None) -> list[Any]:
    """A photo dropped: its largest face read into the session. The sliders at the values read, a note, the photo
    with that face boxed, and the last photo's edit cleared away. No face: the note says why, the photo goes."""
    if upload is None:
        return [gr.skip()] * PHOTO_OUTPUTS
    # Deleted from Gradio's cache once read, where anyone with its URL could fetch it: a face is biometric data.
    # The session keeps its own upright copy, read again when another face is clicked.
    with backend.outputs.holding([upload]):
        try:
            photo = backend.read_for_edit(upload)
        except gr.Error as error:
            backend.outputs.discard(state.edits.take(None, None))
            gr.Warning(error.message)
            return [*[gr.skip()] * len(AU_NAMES), f"⚠️ **Not edited.** {error.message}", None, *cleared()]
        before = backend.outputs.new_folder(state) / f"{Path(upload).stem}.png"
        Image.fromarray(photo.original).save(before, compress_level=1)
    backend.outputs.discard(state.edits.take(photo, before))
    return [*(shown(photo.aus_read[name]) for name in AU_NAMES), photo_note(backend, photo, clicked=False),
            draw_face_box(photo.original, photo.face), *cleared()]


def pick_face(backend: Backend, state: Session, event: gr.SelectData) -> list[Any]:
    """A click on the photo: the face there is the one edited from now on (read, noted and boxed as on a drop).
    A click beside every face says so and keeps the face edited."""
    before = state.edits.before
    if before is None or not before.is_file():
        return [gr.skip()] * PHOTO_OUTPUTS
    point: Point = (float(event.index[0]), float(event.index[1]))
    try:
        photo = backend.read_for_edit(str(before), point)
    except gr.Error as error:
        # The reader's words for a point given by hand ("leave the point out"), said for a click instead.
        missed = error.message.startswith("No face is at")
        gr.Warning("No face is where you clicked: click inside a face. The face edited is still the one boxed."
                   if missed else error.message)
        return [gr.skip()] * PHOTO_OUTPUTS
    backend.outputs.discard(state.edits.take(photo, before))
    return [*(shown(photo.aus_read[name]) for name in AU_NAMES), photo_note(backend, photo, clicked=True),
            draw_face_box(photo.original, photo.face), *cleared()]


def cleared() -> list[Any]:
    """The result column of a photo not edited yet (CLEARED values)."""
    return [gr.update(value=None, label=RESULT_LABEL), None, gr.update(value=None, interactive=False),
            gr.update(visible=False), gr.update(visible=False), None]


def forget_photo(backend: Backend, state: Session) -> str:
    """The photo removed from its box: nothing to edit any more."""
    backend.outputs.discard(state.edits.take(None, None))
    return NO_PHOTO


def back_to_photo(state: Session) -> list[Any]:
    """The AU sliders back at the values read from the photo."""
    photo = state.edits.photo
    if photo is None:  # the edit that follows says what is missing
        return [gr.skip()] * len(AU_NAMES)
    return [shown(photo.aus_read[name]) for name in AU_NAMES]


def render_edit(backend: Backend, state: Session, progress: gr.Progress = gr.Progress(track_tqdm=True),
                **values: Any) -> Iterator[Any]:
    """The photo edited as the tab's values ask, shown as it forms and then whole: the result, the before/after,
    the history, the download and the settings."""
    edits = state.edits
    photo, before = edits.photo, edits.before
    if photo is None or before is None:
        raise gr.Error(NEED_PHOTO, print_exception=False)
    edits.requested = (photo.sha256, photo.face.box, values)
    settings = edit_settings(photo, values)
    key = EditKey(settings, photo.sha256, photo.face.box, before)
    unchanged = [gr.skip()] * 4
    if edits.shown is not None and edits.shown.key == key and edits.shown in edits.history:
        yield (shown_edit(edits.shown), *unchanged)  # nothing changed: the edit shown stays, not a preview of it
        return
    output = None
    try:
        for arrival in backend.stream_edit(photo, settings, progress, state):
            if isinstance(arrival, Glimpse):
                yield (gr.update(value=arrival.image, label=f"Editing: step {arrival.step} of {arrival.total}"),
                       *unchanged)
            else:
                output = arrival
    except Stopped:
        gr.Info("Stopped.")
        yield (shown_edit(edits.shown) if edits.shown else gr.update(value=None, label=RESULT_LABEL), *unchanged)
        return
    result = Result(backend.outputs.png(output.images[0], output.metadata, state), output.metadata, key)
    backend.outputs.discard(edits.remember(result))
    yield shown_edit(result), before_after(result), edit_history(state), edit_download(result), result.metadata


def preview_edit(backend: Backend, state: Session, **values: Any) -> Any:
    """A quick, rough edit of the values a slider is being dragged through, marked as a preview; never a result.
    The edit on release replaces it and reports any error."""
    photo = state.edits.photo
    if photo is None or state.edits.requested == (photo.sha256, photo.face.box, values):
        return gr.skip()  # no photo yet, or that edit has been asked for already: this preview would only hide it
    try:
        image = backend.edit_preview(photo, edit_settings(photo, values))
    except gr.Error:
        return gr.skip()
    return gr.update(value=image, label=PREVIEW_LABEL)


def stop_edit(state: Session) -> Any:
    """Stop the tab's edit (the session's Stop counter, as handlers.request_stop); the result goes back from the
    glimpse it was showing to the edit shown before."""
    state.stops += 1
    return shown_edit(state.edits.shown) if state.edits.shown else gr.skip()


def restore_edit(state: Session, event: gr.SelectData) -> list[Any]:
    """An edit clicked in the history, back on the page: EDIT_VALUES when it is of the face being edited (of
    another photo or face, a warning: its values are that face's), then its image, before/after, download and
    settings."""
    clicked = Path(event.value["image"]["path"]).name  # by file, not index: a new edit shifts every index
    result = next((result for result in state.edits.history if result.path.name == clicked), None)
    if result is None:
        gr.Warning("That edit is no longer in this session's history.")
        return [gr.skip()] * (len(EDIT_VALUES) + 4)
    state.edits.shown = result
    if result.key.same_face(state.edits.photo):
        settings = result.key.settings
        values = [*(shown(settings.aus[name]) for name in AU_NAMES), *(getattr(settings, name) for name in EDIT_SPEC)]
    else:
        gr.Warning("That edit is of another photo, or another face in it: it is shown, and the sliders stay with "
                   "the face being edited. To edit that face again, drop its photo again.")
        values = [gr.skip()] * len(EDIT_VALUES)
    return [*values, shown_edit(result), before_after(result), edit_download(result), result.metadata]


def shown_edit(result: Result) -> dict[str, Any]:
    return gr.update(value=str(result.path), label=RESULT_LABEL)


def before_after(result: Result) -> tuple[str, str] | None:
    """The before/after view of an edit: the photo as it was, then the edit."""
    return (str(result.key.before), str(result.path)) if result.key.before.is_file() else None


def edit_caption(metadata: dict[str, Any]) -> str:
    """'AU12=4.5 · seed 0': the AUs the edit changed, at the values asked for."""
    asked, change = metadata["aus"][0], metadata["au_change"]
    changed = [f"{name}={round(asked[name], 2):g}" for name in AU_NAMES if round(change[name], 2) != 0]
    return f"{', '.join(changed) or 'no change'} · seed {metadata['seed']}"


def edit_history(state: Session) -> dict[str, Any]:
    """The edit history, its newest (the one just shown) highlighted."""
    return gr.update(value=[(str(result.path), edit_caption(result.metadata)) for result in state.edits.history],
                     selected_index=0)


def edit_download(result: Result) -> dict[str, Any]:
    return gr.update(value=str(named_link(result.path, result.metadata)), interactive=True)
