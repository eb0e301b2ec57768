"""The HTTP API: `/generate`, `/preview`, `/sweep`, `/animate`, `/upscale`, `/read_aus` and `/edit`, typed
endpoints (gr.api) whose parameters come from SETTINGS (EDIT_SETTINGS for /edit).

Every value is validated by GenerationSettings exactly as the page's are; a bad one comes back as a
readable error.
"""

from __future__ import annotations

import inspect
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, get_type_hints

import gradio as gr
from gradio_client.utils import is_file_obj_with_meta

from ..animation import frame_name, render_frames, write_videos, zip_frames
from ..aus import au_dict
from ..edit_settings import EDIT_SETTINGS, EditSettings, parse_point
from ..errors import InvalidInputError
from ..keyframes import DEFAULT_EASING, DEFAULT_FPS, Motion
from ..png_info import read_settings, save_png
from ..settings import SETTINGS, UPSCALE_SETTINGS, GenerationSettings, Upscale, is_au_list
from .handlers import sweep_values
from .rendering import Backend, readable_errors
from .session import API_CALLS_AT_ONCE

# API calls have slots of their own (the page's renders share ui.GPU), so that a call waiting for the face
# models to load (minutes on first use) holds up neither the page nor text-only calls; each pipeline still
# runs one request at a time (FineFacePipeline's lock).
API = {"concurrency_id": "api", "concurrency_limit": API_CALLS_AT_ONCE}
API_FILES = "api-"  # the prefix of the API's result files, kept apart from the tabs' files
API_FILE_AGE_S = 600  # API results are fetched by the client right after the call


def parse_api_aus(aus: Any) -> Any:
    """The API's `aus`: 'AU6=2.5, AU12=5', or JSON text (or a JSON value): a dict or twelve numbers."""
    if not isinstance(aus, str):
        return aus
    if aus.strip()[:1] not in ("{", "["):
        return aus
    try:  # the text as given, not stripped, so that the line and column are those the client sees
        return json.loads(aus, object_pairs_hook=refuse_repeated_keys)
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"aus is not valid JSON: {error.msg} at line {error.lineno}, "
                                f"column {error.colno}.") from None


def refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key given twice (json.loads would keep the last value)."""
    names = [name for name, _ in pairs]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:
        raise InvalidInputError(f"{repeated!r} is given twice in aus; give each AU once.")
    return dict(pairs)


def one_au_setting(aus: Any) -> Any:
    """`aus` unless it is several AU settings: /generate returns one image, so it renders exactly one."""
    if is_au_list(aus):
        raise InvalidInputError(f"/generate renders one image: give one AU setting ('AU12=3', a dict or twelve "
                                f"numbers in model order), not a list of {len(aus)}. For one AU at several "
                                "intensities, call /sweep.")
    return aus


@contextmanager
def call_photos(backend: Backend, photos: Any) -> Iterator[list[str]]:
    """The call's uploaded photos, deleted from Gradio's upload cache (where anyone holding the URL could
    fetch them) when the call ends, refused or not: an API call is a session of its own."""
    uploads = photo_paths(photos)
    with backend.outputs.holding(uploads):
        yield uploads


def photo_paths(photos: Any) -> list[str]:
    """Uploaded files as the server's paths. Gradio checks that a file is one of its uploads only when
    the file carries its "meta" marker: a bare {"path": ...} would reach any file on the server."""
    if photos is None:
        return []
    if not isinstance(photos, list) or not all(is_file_obj_with_meta(photo) for photo in photos):
        raise gr.Error("photos must be a list of files uploaded to this app (gradio_client.handle_file).",
                       print_exception=False)
    return [photo["path"] for photo in photos]


def no_progress(*args: Any, **kwargs: Any) -> None:
    """API clients get the result, not a progress bar."""


def one_image_settings(backend: Backend, prompt: str, aus: str, options: dict[str, Any]) -> GenerationSettings:
    backend.outputs.discard_older_than(API_FILE_AGE_S, API_FILES)
    with readable_errors():
        return GenerationSettings.create(prompt, one_au_setting(parse_api_aus(aus)), **options)


def generate(backend: Backend, prompt: str, aus: str, photos: Any, **options: Any) -> tuple[gr.FileData, dict]:
    """One image (PNG with its settings embedded) and its metadata."""
    with call_photos(backend, photos) as paths:
        settings = one_image_settings(backend, prompt, aus, options)
        output = backend.render(settings, paths, no_progress).output
    image = backend.outputs.png(output.images[0], output.metadata_for(0), API_FILES)
    return gr.FileData(path=str(image)), output.metadata


def preview(backend: Backend, prompt: str, aus: str, photos: Any, **options: Any) -> gr.FileData:
    """A quick, rough image of the same settings (a few steps, decoded by TAESD) as a small JPEG without
    settings: for controls that follow a slider live. Call /generate for the image itself."""
    with call_photos(backend, photos) as paths:
        settings = one_image_settings(backend, prompt, aus, options)
        [image] = backend.preview(settings, paths)
    return gr.FileData(path=str(backend.outputs.jpeg(image, API_FILES)))


def sweep(backend: Backend, prompt: str, aus: str, au: str, start: float, stop: float, frames: int, photos: Any,
          **options: Any) -> tuple[list[gr.FileData], gr.FileData, dict]:
    """`frames` images with AU `au` stepping from `start` to `stop`, everything else fixed; plus a GIF."""
    with call_photos(backend, photos) as paths:
        backend.outputs.discard_older_than(API_FILE_AGE_S, API_FILES)
        with readable_errors():
            au_list = sweep_values(au_dict(parse_api_aus(aus)), au, start, stop, frames)
            settings = GenerationSettings.create(prompt, au_list, **options)
        output = backend.render(settings, paths, no_progress).output
    images = [backend.outputs.png(picture, output.metadata_for(i), API_FILES)
              for i, picture in enumerate(output.images)]
    animation = backend.outputs.gif(output.images, API_FILES)
    # Dumped: Gradio moves the files it finds in a result to its cache, and it looks inside a list only for dicts.
    frames = [gr.FileData(path=str(path)).model_dump() for path in images]
    return frames, gr.FileData(path=str(animation)), output.metadata


def animate(backend: Backend, prompt: str, keys: str, seconds: float, fps: int, easing: str, photos: Any,
            **options: Any) -> tuple[gr.FileData, gr.FileData, gr.FileData, dict]:
    """A keyframed motion (`keys` such as "0:neutral; 1:AU12=4": seconds and AUs, or a preset's name; `seconds`
    0: until the last keyframe) as an MP4 (H.264), a looping GIF and a ZIP of the PNG frames with their
    settings; and the frames' metadata."""
    with call_photos(backend, photos) as paths:
        backend.outputs.discard_older_than(API_FILE_AGE_S, API_FILES)
        with readable_errors("Animating"):
            motion = Motion.create(keys, seconds, fps, easing)
            settings = GenerationSettings.create(prompt, None, **options)
        made: list[dict] = []  # each chunk's metadata, not its pictures: those go to files at once

        def chunk(frames: GenerationSettings) -> Any:
            output = backend.render(frames, paths, no_progress).output
            made.append(output.metadata)
            return output

        with backend.outputs.scratch() as folder:  # the frames go into the ZIP, not one by one to the client
            names = (Path(folder) / frame_name(index) for index in range(motion.frame_count))
            *_, frames = render_frames(settings, motion, chunk, lambda image, data: save_png(image, next(names), data))
            with readable_errors("Writing the video"):
                video, gif = write_videos(frames, backend.outputs.new_file(API_FILES, ".mp4"),
                                          backend.outputs.new_file(API_FILES, ".gif"), motion.fps)
                archive = zip_frames(frames, backend.outputs.new_file(API_FILES, ".zip"))
    metadata = {**made[0], "aus": [aus for data in made for aus in data["aus"]], "animation": motion.as_dict()}
    return gr.FileData(path=str(video)), gr.FileData(path=str(gif)), gr.FileData(path=str(archive)), metadata


def upscale(backend: Backend, image: Any, photos: Any, **options: Any) -> tuple[gr.FileData, dict]:
    """A PNG this app made (its settings inside) larger by `scale` and redrawn at `strength` with the same
    prompt, AUs and seed; an image made with face photos needs them again in `photos`."""
    with call_photos(backend, photos) as paths, call_photos(backend, [image]) as [source]:
        backend.outputs.discard_older_than(API_FILE_AGE_S, API_FILES)
        with readable_errors("Upscaling"):
            options = Upscale.create(**options)
            metadata = read_settings(source)
            if "upscale" in metadata:
                raise InvalidInputError("This image is upscaled already: send the image it was made from.")
            # The photos choose the pipeline, as for /generate: those the image was made with, or none.
            if metadata.get("faces", 0) != len(paths):
                made = f"{metadata['faces']} face photo(s)" if metadata.get("faces") else "no face photo"
                raise InvalidInputError(f"This image was made from {made}; {len(paths)} were sent. Send the "
                                        "photos it was made from in photos (none for an image without a face).")
            settings = GenerationSettings.from_metadata(metadata)
            options.steps(settings.num_inference_steps)  # refused before the GPU slot when it runs none
        output = backend.upscale(settings, source, paths, options, no_progress).output
    return gr.FileData(path=str(backend.outputs.png(output.images[0], output.metadata_for(0), API_FILES))), \
        output.metadata


def read_aus(backend: Backend, photos: Any) -> list[dict]:
    """Per photo, the twelve AU intensities (0..5, LibreFace's scale) of its largest face and where that face is."""
    with call_photos(backend, photos) as paths:
        if not paths:
            raise gr.Error("photos is empty: send at least one photo of a face (gradio_client.handle_file).",
                           print_exception=False)
        readings = backend.read_aus(paths)
    return [{"aus": {name: round(value, 3) for name, value in reading.aus.items()}, "box": list(reading.face.box),
             "faces_found": reading.face.face_count} for reading in readings]


def edit(backend: Backend, photo: Any, aus: str, change: str, face_at: str, **options: Any) -> tuple[gr.FileData, dict]:
    """The photo with its largest face's expression changed (MagicFace), or the face at `face_at` ('X,Y' in
    pixels): `aus` sets target intensities ('AU12=4'; the AUs not named keep the photo's own, as read), `change`
    adds to the photo's ('AU12=2'). A PNG of the photo's size whose metadata has the AUs read and asked for."""
    with call_photos(backend, [photo]) as [path]:
        backend.outputs.discard_older_than(API_FILE_AGE_S, API_FILES)
        with readable_errors("Editing"):
            request = {"aus": parse_api_aus(aus) or None, "change": parse_api_aus(change) or None, **options}
            EditSettings.create({}, **request)  # a bad value is refused before the photo is read
            point = parse_point(face_at)
        prepared = backend.read_for_edit(path, point)
        with readable_errors("Editing"):
            settings = EditSettings.create(prepared.aus_read, **request)
        output = backend.edit(prepared, settings, no_progress)
    return gr.FileData(path=str(backend.outputs.png(output.images[0], output.metadata, API_FILES))), output.metadata


def _parameter(name: str, kind: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=kind)


PROMPT_PARAMETERS = [_parameter("prompt", str), _parameter("aus", str, "")]
SWEEP_PARAMETERS = [_parameter("au", str, "AU12"), _parameter("start", float, 0.0), _parameter("stop", float, 5.0),
                    _parameter("frames", int, 8)]
PHOTOS_PARAMETER = _parameter("photos", list[gr.FileData] | None, None)
SETTING_PARAMETERS = [_parameter(setting.name, setting.kind, setting.default) for setting in SETTINGS]


def endpoint(function: Callable[..., Any], backend: Backend, parameters: list[inspect.Parameter]) -> Callable:
    """`function` with `backend` bound and this typed signature: gr.api reads the endpoint's parameters,
    their types and defaults from the signature (functools.partial would hide them)."""
    names = [parameter.name for parameter in parameters]

    def call(*values: Any) -> Any:
        return function(backend, **dict(zip(names, values)))

    call.__name__, call.__doc__ = function.__name__, function.__doc__
    returns = get_type_hints(function)["return"]
    call.__signature__ = inspect.Signature(parameters, return_annotation=returns)  # type: ignore[attr-defined]
    call.__annotations__ = {**{p.name: p.annotation for p in parameters}, "return": returns}
    return call


def add_api(backend: Backend) -> None:
    """Register the endpoints in the Blocks being built."""
    for function in (generate, preview):
        gr.api(endpoint(function, backend, [*PROMPT_PARAMETERS, *SETTING_PARAMETERS, PHOTOS_PARAMETER]),
               api_name=function.__name__, **API)
    gr.api(endpoint(sweep, backend, [*PROMPT_PARAMETERS, *SWEEP_PARAMETERS, PHOTOS_PARAMETER, *SETTING_PARAMETERS]),
           api_name="sweep", **API)
    animation_parameters = [_parameter("keys", str, "0:neutral; 1:AU12=4"), _parameter("seconds", float, 0.0),
                            _parameter("fps", int, DEFAULT_FPS), _parameter("easing", str, DEFAULT_EASING)]
    gr.api(endpoint(animate, backend, [_parameter("prompt", str), *animation_parameters, PHOTOS_PARAMETER,
                                       *SETTING_PARAMETERS]), api_name="animate", **API)
    upscale_parameters = [_parameter(setting.name, setting.kind, setting.default) for setting in UPSCALE_SETTINGS]
    gr.api(endpoint(upscale, backend, [_parameter("image", gr.FileData), PHOTOS_PARAMETER, *upscale_parameters]),
           api_name="upscale", **API)
    gr.api(endpoint(read_aus, backend, [_parameter("photos", list[gr.FileData])]), api_name="read_aus", **API)
    edit_parameters = [_parameter("photo", gr.FileData), _parameter("aus", str, ""), _parameter("change", str, ""),
                       _parameter("face_at", str, ""),
                       *(_parameter(setting.name, setting.kind, setting.default) for setting in EDIT_SETTINGS)]
    gr.api(endpoint(edit, backend, edit_parameters), api_name="edit", **API)
