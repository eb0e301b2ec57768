"""The page's event handlers: page values in, one Studio call, page values out.

Plain functions, so tests call them without a browser. Page values travel by name; PAGE_VALUES is
the order ui.py lays the controls out in (the restoring handlers, restoring.py, return them in it).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import numpy as np
from PIL import Image

from ..aus import AU_NAMES, NUMBER_RULE, canonical_name, check_intensity, format_aus, is_number
from ..errors import InvalidInputError, NoFaceError
from ..faces.detection import DetectedFace
from ..faces.embedder import draw_face_box
from ..presets import PRESETS, preset_aus
from ..settings import FACE, MAX_IMAGES_PER_CALL, MAX_SEED, SETTINGS, SPEC, TEXT, GenerationSettings, Upscale
from .before_after import NEUTRAL, rendered, save_result, shown_pair, twin_key, upscaled
from .named_download import named_link
from .rendering import Backend, Glimpse, Stopped, create_settings, readable_errors
from .session import Result, Session

PAGE_VALUES = ("prompt", *SPEC, *AU_NAMES)
# The settings only one pipeline uses: the page shows each only while that pipeline is the one in use.
PIPELINE_SETTINGS = tuple(setting for setting in SETTINGS if len(setting.pipelines) == 1)
NO_PHOTO = "No photo: the text-only model is used."
RESULT_LABEL = "Result"
PREVIEW_LABEL = "Preview: quick and rough, the full image follows on release"
COMPARE_TAB = "Before / after"


def random_seed() -> int:
    return random.randint(0, MAX_SEED)


def split(values: dict[str, Any]) -> tuple[str, dict[str, float], dict[str, Any]]:
    """Page values by name -> (prompt, AUs, other settings), the arguments of create_settings."""
    return values["prompt"], {name: values[name] for name in AU_NAMES}, {name: values[name] for name in SPEC}


def image_key(settings: GenerationSettings, photos: list[str]) -> tuple:
    """What decides an image: equal keys, equal images (settings the pipeline ignores left out)."""
    return settings.as_used_by(FACE if photos else TEXT), tuple(photos)


def render(backend: Backend, state: Session, photo_paths: list[str] | None, keep: bool, compare_shown: bool,
           progress: gr.Progress = gr.Progress(track_tqdm=True), **values: Any) -> Iterator[Any]:
    """The image for the page's settings, shown as it forms (glimpses every few steps) and then whole.
    While the Before / after view is shown, its all-AUs-0 twin rides in the same batch (one call, the
    same starting noise) unless it is at hand already."""
    state.requested = (without_seed(values), tuple(photo_paths or ()))
    if not keep:
        values["seed"] = random_seed()
    text, aus, options = split(values)
    settings = create_settings(text, aus, **options)
    photos = own_photos(backend, state, photo_paths)
    key = image_key(settings, photos)
    if keep and state.shown is not None and state.shown.key[:2] == key:
        # Nothing changed (a number box losing focus, a slider dragged back): the image shown stays, upscaled
        # or not, rather than a preview of it or a render of it again.
        yield (shown_image(state.shown.path), *[gr.skip()] * 5)
        return
    neutral_key = twin_key(key)
    with_twin = compare_shown and key != neutral_key and not (state.neutral and state.neutral.key == neutral_key)
    batch = replace(settings, aus=NEUTRAL + settings.aus) if with_twin else settings
    output = None
    try:
        for arrival in backend.stream(batch, photos, progress, state):
            if isinstance(arrival, Glimpse):
                yield (gr.update(value=arrival.image, label=f"Forming: step {arrival.step} of {arrival.total}"),
                       *[gr.skip()] * 5)
            else:
                output = arrival.output
    except Stopped:
        gr.Info("Stopped.")
        yield (show_newest(state) if state.history else None, *[gr.skip()] * 5)
        return
    result = save_result(backend, state, output, len(output.images) - 1, key)
    twin = save_result(backend, state, output, 0, neutral_key) if with_twin else result if key == neutral_key else None
    backend.outputs.discard(state.remember(result, twin))
    warn_about_cut_text(result.metadata)
    yield (shown_image(result.path), shown_pair(state), shown_history(state), download_update(result), settings.seed,
           result.metadata)


def preview(backend: Backend, state: Session, photo_paths: list[str] | None, **values: Any) -> Any:
    """A quick, rough image (previews.py) of the values a slider is being dragged through, marked as a
    preview; never a result. The render on release replaces it and reports any error."""
    if state.requested == (without_seed(values), tuple(photo_paths or ())):
        return gr.skip()  # that render has been asked for already: this preview would only hide it
    if photo_paths and not backend.face_models_loaded():
        return gr.skip()  # no waiting in the GPU slot for a preview: the render on release waits, outside it
    text, aus, options = split(values)
    try:
        [image] = backend.preview(create_settings(text, aus, **options), own_photos(backend, state, photo_paths))
    except gr.Error:
        return gr.skip()
    return gr.update(value=image, label=PREVIEW_LABEL)


def without_seed(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if name != "seed"}


def shown_image(path: Path | str) -> dict[str, Any]:
    """A result in the page's image, its label back from a preview's."""
    return gr.update(value=str(path), label=RESULT_LABEL)


def show_newest(state: Session) -> dict[str, Any]:
    """The newest result back on the page (after a Stop, or when nothing changed)."""
    state.shown = state.history[0]
    return shown_image(state.shown.path)


def caption(metadata: dict[str, Any]) -> str:
    upscaled = f" · x{metadata['upscale']['scale']:g}" if "upscale" in metadata else ""
    return f"{format_aus(metadata['aus'][0])} · seed {metadata['seed']}{upscaled}"


def history_items(state: Session) -> list[tuple[str, str]]:
    return [(str(result.path), caption(result.metadata)) for result in state.history]


def shown_history(state: Session) -> dict[str, Any]:
    """The history with its newest image, the one just shown, highlighted: a highlight left on a position
    would mark another image once the new one pushes the others along."""
    return gr.update(value=history_items(state), selected_index=0)


def download_update(result: Result) -> dict[str, Any]:
    return gr.update(value=str(named_link(result.path, result.metadata)), interactive=True)


def compare_view_shown(event: gr.SelectData) -> bool:
    """Whether the tab just selected is the Before / after view (renders then bring the twin along)."""
    return event.value == COMPARE_TAB


def request_stop(state: Session) -> Any:
    """Stop the tab's render; its image goes back from the glimpse it was showing to the newest result."""
    state.stops += 1
    return show_newest(state) if state.history else gr.skip()


def upscale_result(backend: Backend, state: Session, scale: float, strength: float,
                   progress: gr.Progress = gr.Progress(track_tqdm=True)) -> Any:
    """The result on the page upscaled (FineFacePipeline.upscale) with the settings and face photos it was
    made with, first in the history: the image, the history, its download and its settings."""
    source = state.shown if state.shown in state.history else None
    if source is None:
        raise gr.Error("Render an image first: Upscale redraws the result shown, larger.", print_exception=False)
    photos = source.key[1]
    if upscaled(source):
        raise gr.Error("This image is upscaled already; upscale the image it was made from (click it in the "
                       "history).", print_exception=False)
    if not all(Path(photo).exists() for photo in photos):
        raise gr.Error("The face photos of this image are gone: add the face again and render it before "
                       "upscaling.", print_exception=False)
    with readable_errors("Upscaling"):
        upscale = Upscale.create(scale=scale, strength=strength)
        settings = GenerationSettings.from_metadata(source.metadata)  # as made, not as the key compares them
        upscale.steps(settings.num_inference_steps)  # refused here, not in the GPU slot, when it runs none
    try:
        output = backend.upscale(settings, str(source.path), photos, upscale, progress, state).output
    except Stopped:
        gr.Info("Stopped.")
        return [gr.skip()] * 4
    metadata = output.metadata_for(0)
    result = Result(backend.outputs.png(output.images[0], metadata, state), metadata, (*source.key, upscale))
    backend.outputs.discard(state.remember(result, None))
    return shown_image(result.path), shown_history(state), download_update(result), metadata


def sweep_values(base: dict[str, float], au: str, start: Any, stop: Any, frames: Any) -> list[dict[str, float]]:
    """One AU dict per frame: `au` stepping evenly from `start` to `stop`, the others fixed."""
    # Checked here, before the frames exist: a client may ask for 1e9 of them. The range is compared
    # first, so that NaN and infinity fail it before int() could raise.
    if not (is_number(frames) and 2 <= frames <= MAX_IMAGES_PER_CALL and frames == int(frames)):
        rule = "" if is_number(frames) else f" ({NUMBER_RULE})"
        raise InvalidInputError(f"frames must be a whole number from 2 to {MAX_IMAGES_PER_CALL}, got {frames!r}{rule}.")
    name = canonical_name(au)
    start, stop = check_intensity(f"{name} start", start), check_intensity(f"{name} stop", stop)
    return [{**base, name: round(float(value), 3)} for value in np.linspace(start, stop, int(frames))]


def warn_about_cut_text(metadata: dict[str, Any]) -> None:
    """Say when CLIP could not read the whole prompt: its end silently did nothing."""
    for name, count in metadata.get("tokens_dropped", {}).items():
        if count:
            gr.Warning(f"The {name.replace('_', ' ')} is {count} token(s) longer than CLIP reads (77 tokens); "
                       "its end was left out. Shorten it, or put what matters first.")


def render_sweep(backend: Backend, state: Session, photo_paths: list[str] | None, au: str, start: float,
                 stop: float, frames: int, progress: gr.Progress = gr.Progress(track_tqdm=True), **values: Any) -> Any:
    """The sweep's frames as a gallery and a looping GIF."""
    text, aus, options = split(values)
    with readable_errors():
        au_list = sweep_values(aus, au, start, stop, frames)
    settings = create_settings(text, au_list, **options)
    output = rendered(backend, settings, own_photos(backend, state, photo_paths), progress, state)
    if output is None:
        return gr.skip()
    backend.outputs.discard(state.sweep_files)
    paths = [backend.outputs.png(picture, output.metadata_for(i), state) for i, picture in enumerate(output.images)]
    state.sweep_files = [*paths, backend.outputs.gif(output.images, state)]
    warn_about_cut_text(output.metadata)
    name = state.sweep_au = canonical_name(au)
    gallery = [(str(path), f"{name}={frame[name]:g}") for path, frame in zip(paths, settings.aus)]
    return gallery, str(state.sweep_files[-1])


def own_photos(backend: Backend, state: Session, photo_paths: list[str] | None) -> list[str]:
    """The tab's own copies of the uploaded photos, deleted from Gradio's cache, where anyone holding the
    URL could fetch them, and deleted with the tab (session.OutputFolder.take_photos)."""
    return [str(path) for path in backend.outputs.take_photos(state, photo_paths or [])]


def await_face_models(backend: Backend, photo_paths: list[str] | None) -> None:
    """Before a render with photos: the face models loaded, or their load waited for, outside the GPU slot."""
    with readable_errors():
        backend.load_face_models(photo_paths or [])


def show_faces(backend: Backend, state: Session, photo_paths: list[str] | None,
               progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[list[tuple[Image.Image, str]], str]:
    """The face found in each photo, boxed; loads the face models here, outside the GPU slot."""
    photo_paths = own_photos(backend, state, photo_paths)
    if not photo_paths:
        return [], NO_PHOTO
    studio = backend.studio
    with readable_errors():
        if not studio.is_loaded("faces"):
            progress(0, desc="Loading the face detector (first use: a download)")
        try:
            found = studio.face_embedder().embed(list(photo_paths))
        except NoFaceError as error:  # an answer to show beside the photos, not a failure
            return [], f"⚠️ **No face found.** {error}"
        if not studio.is_loaded("identity"):
            # Here, outside the GPU slot: its download bars show on this panel, renders go on.
            progress(0, desc="Loading the face pipeline (first use: a download of several GB)")
            studio.identity_pipeline()
    boxed = [(draw_face_box(path, face), face_caption(face)) for path, face in zip(photo_paths, found.faces)]
    return boxed, f"Face found in {len(boxed)} photo(s); the boxed face sets the identity."


def face_caption(face: DetectedFace) -> str:
    others = f", the largest of {face.face_count} faces" if face.face_count > 1 else ""
    return f"{face.label}: score {face.score:.2f}{others}"


def pipeline_controls(photo_paths: list[str] | None) -> list[dict[str, Any]]:
    """Show the settings of the pipeline the photos select (PIPELINE_SETTINGS order), hide the others'."""
    pipeline = FACE if photo_paths else TEXT
    return [gr.update(visible=pipeline in setting.pipelines) for setting in PIPELINE_SETTINGS]


def apply_preset(name: str | None) -> list[Any]:
    """The preset's twelve AU values, or no change for an unknown name."""
    return list(preset_aus(name).values()) if name in PRESETS else [gr.skip()] * len(AU_NAMES)


def reset_aus() -> list[float]:
    return [0.0] * len(AU_NAMES)
