"""The Gradio page: prompt, face photos and twelve AU sliders in; image, before/after, history and sweep out.

Each handler turns UI values into GenerationSettings, calls Studio, and turns the result back into
UI values. Every event that runs the models shares one concurrency slot, so requests queue in order.
"""

from __future__ import annotations

import json
import logging
import math
import random
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import gradio as gr
import numpy as np
import torch
from PIL import Image

from .aus import ACTION_UNITS, AU_NAMES, TRAINED_RANGE, ActionUnit, au_dict, canonical_name, check_intensity, format_aus
from .errors import FineFaceError, GPUMemoryError, InvalidInputError, NoFaceError
from .faces import DetectedFace, draw_face_box
from .pipeline import FineFaceOutput
from .png_info import read_settings, save_png
from .presets import PRESETS, preset_aus
from .settings import MAX_IMAGES_PER_CALL, MAX_SEED, SCHEDULERS, SIZES, GenerationSettings
from .studio import Studio, StudioResult
from .zero_gpu import on_gpu

log = logging.getLogger(__name__)

GPU = "gpu"  # concurrency id of every event that runs the diffusion models: one request at a time
AU_SLIDER_RANGE = (-5.0, 10.0)
HISTORY_SIZE = 24
API_FILE_AGE_S = 600  # API results are fetched by the client right after the call
REGION_TITLES = {"brows": "Brows", "eyes": "Eyes & cheeks", "nose": "Nose", "mouth": "Mouth",
                 "chin": "Chin & jaw", "jaw": "Chin & jaw"}
OPTION_NAMES = tuple(name for name in GenerationSettings.__dataclass_fields__ if name not in ("prompt", "aus"))

# Slider `.input` fires on every drag tick and `.release` on pointer-up, but arrow keys fire only
# `.input`. Rendering from `.input` would render a stale mid-drag value first; rendering only on
# `.release` would ignore the keyboard. So the page tracks whether a pointer is pressed, and a
# keyboard `.input` bumps a hidden counter whose change joins the release triggers.
TRACK_POINTER_JS = """() => {
  window.fineFacePointerDown = false;
  const track = (down) => () => { window.fineFacePointerDown = down; };
  window.addEventListener("pointerdown", track(true), true);
  window.addEventListener("pointerup", track(false), true);
  window.addEventListener("pointercancel", track(false), true);
}"""
COUNT_KEYBOARD_CHANGE_JS = """(count) => {
  const byKeyboard = !window.fineFacePointerDown && document.activeElement?.type === "range";
  return byKeyboard ? count + 1 : count;
}"""
# Page styles (pass to launch(css=...)); fineface_ui/assets/fineface.css says why each rule is there.
CSS = (resources.files(__package__) / "assets" / "fineface.css").read_text()


class Stopped(Exception):
    """Raised from the step callback when the user pressed Stop."""


@dataclass
class Result:
    """One image written as PNG with its settings, and what produced it."""

    path: Path
    metadata: dict[str, Any]
    key: Any = None  # the settings and photos it came from, to notice when nothing changed


@dataclass
class Session:
    """What one browser tab keeps on the server: its results and its Stop presses."""

    history: list[Result] = field(default_factory=list)  # newest first
    neutral: Result | None = None  # the all-AUs-0 twin of the latest image, reused while only AUs change
    sweep_files: list[Path] = field(default_factory=list)
    # A counter rather than a flag: a run stops when it changes under it, so a later run
    # starting cannot clear a Stop meant for an earlier one, and a Stop with nothing running is harmless.
    stops: int = 0

    def files(self) -> list[Path]:
        neutral = [self.neutral.path] if self.neutral else []
        return [result.path for result in self.history] + neutral + self.sweep_files

    def remember(self, result: Result, neutral: Result | None) -> set[Path]:
        """Put a result first in the history (and a new neutral twin); return the files no longer shown."""
        shown_before = set(self.files())
        self.neutral = neutral or self.neutral
        self.history = [result, *self.history][:HISTORY_SIZE]
        return shown_before - set(self.files())


class OutputFolder:
    """Result files (PNG with settings, GIF) that Gradio copies into its cache to serve."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="fineface-")  # removed when the app exits
        self.root = Path(self._folder.name)

    def png(self, image: Image.Image, metadata: dict[str, Any], prefix: str = "") -> Path:
        return save_png(image, self.root / f"{prefix}{uuid.uuid4().hex}.png", metadata)

    def gif(self, frames: Sequence[Image.Image], prefix: str = "", frame_ms: int = 120) -> Path:
        """An endless loop that plays forward then back, so the expression never jumps."""
        path = self.root / f"{prefix}{uuid.uuid4().hex}.gif"
        loop = list(frames) + list(frames[-2:0:-1])
        loop[0].save(path, save_all=True, append_images=loop[1:], duration=frame_ms, loop=0)
        return path

    @staticmethod
    def discard(paths: Iterable[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    def discard_older_than(self, seconds: float, prefix: str) -> None:
        limit = time.time() - seconds
        self.discard(path for path in self.root.glob(f"{prefix}*") if path.stat().st_mtime < limit)


@contextmanager
def readable_errors() -> Iterator[None]:
    """Turn any failure into a gr.Error a user can read; unexpected ones are logged with their trace."""
    try:
        yield
    except (gr.Error, Stopped):
        raise
    except FineFaceError as error:
        raise gr.Error(str(error), print_exception=False) from None
    except torch.OutOfMemoryError:  # outside a denoising loop (e.g. moving a model to the GPU)
        log.warning("out of GPU memory", exc_info=True)
        torch.cuda.empty_cache()
        raise gr.Error(GPUMemoryError.MESSAGE, print_exception=False) from None
    except Exception as error:
        log.exception("generation failed")
        raise gr.Error(
            f"Generation failed unexpectedly ({type(error).__name__}). The details are in the server log; "
            "try again, or change a setting.", print_exception=False
        ) from None


FACE_MODELS_LOADING = ("The face models are still loading (on first use that includes a download of several GB; "
                       "the status shows under the photos). Text-only images render meanwhile; try the face "
                       "again in a minute.")


@dataclass
class StepReporter:
    """Progress bar and Stop for one run. A class, not a closure: ZeroGPU pickles the run's arguments
    into its worker process, where the session is a copy, so there Stop cannot end a running render."""

    progress: gr.Progress
    session: Session | None

    def __post_init__(self) -> None:
        self.stops_before = self.session.stops if self.session is not None else 0

    def __call__(self, step: int, total: int) -> None:
        if self.session is not None and self.session.stops != self.stops_before:
            raise Stopped
        self.progress((step, total), desc="Denoising")


def generate_readably(studio: Studio, settings: GenerationSettings, photos: Sequence[str],
                      on_step: StepReporter) -> StudioResult:
    """Studio.generate with its failures as gr.Error: ZeroGPU's worker passes on only gr.Error's message."""
    with readable_errors():
        return studio.generate(settings, photos, on_step)


def run_studio(
    generate: Callable[..., StudioResult],
    studio: Studio,
    settings: GenerationSettings,
    photos: Sequence[str],
    progress: gr.Progress,
    session: Session | None = None,
) -> StudioResult:
    """Generate with a progress bar; a Stop pressed during the run aborts it at the next denoising step.

    `generate` is generate_readably as the GPU slot runs it (zero_gpu.on_gpu). The face models never
    load inside the slot: until they are ready, a request with photos starts their loading and is
    answered with a message, so other visitors' requests keep rendering.
    """
    with readable_errors():
        if photos and not all([studio.ready("faces"), studio.ready("identity")]):
            studio.start_loading("faces")
            studio.start_loading("identity")
            raise FineFaceError(FACE_MODELS_LOADING)
        return generate(studio, settings, photos, StepReporter(progress, session))


def create_settings(prompt: str, aus: Any, **options: Any) -> GenerationSettings:
    """GenerationSettings from UI/API values, validation errors as gr.Error."""
    with readable_errors():
        return GenerationSettings.create(prompt, aus, **options)


def parse_api_aus(text: str) -> Any:
    """The API's `aus`: a JSON object or list, or the 'AU6=2.5, AU12=5' form."""
    text = (text or "").strip()
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise gr.Error(f"aus is not valid JSON: {error}", print_exception=False) from None
    return text


def caption(metadata: dict[str, Any]) -> str:
    return f"{format_aus(metadata['aus'][0])} · seed {metadata['seed']}"


def settings_values(metadata: dict[str, Any]) -> dict[str, Any]:
    """Validated setting values by name (GenerationSettings fields and AU names) from stored metadata."""
    with readable_errors():
        values = GenerationSettings.from_metadata(metadata).as_dict()
    return {**{name: values[name] for name in ("prompt", *OPTION_NAMES)}, **values["aus"][0]}


def fit_to_sliders(values: dict[str, Any], components: dict[str, gr.components.Component]) -> list[Any]:
    """Values in component order, clamped to slider ranges with a warning naming what changed."""
    fitted, clamped = [], []
    for name, component in components.items():
        value = values[name]
        if value is None:  # not part of that image (the face pipeline has no LoRA): keep what is set
            fitted.append(gr.skip())
            continue
        if isinstance(component, gr.Slider) and not component.minimum <= value <= component.maximum:
            value = min(max(value, component.minimum), component.maximum)
            clamped.append(f"{name} {values[name]:g} → {value:g}")
        fitted.append(value)
    if clamped:
        gr.Warning("Outside the sliders' range, clamped: " + ", ".join(clamped))
    return fitted


def random_seed() -> int:
    return random.randint(0, MAX_SEED)


def sweep_values(base: dict[str, float], au: str, start: Any, stop: Any, frames: Any) -> list[dict[str, float]]:
    """One AU dict per frame: `au` stepping evenly from `start` to `stop`, the others fixed."""
    # Checked here, before the frames exist: a client may ask for 1e9 of them.
    if (not isinstance(frames, (int, float)) or not math.isfinite(frames) or frames != int(frames)
            or not 2 <= frames <= MAX_IMAGES_PER_CALL):
        raise InvalidInputError(f"frames must be a whole number from 2 to {MAX_IMAGES_PER_CALL}, got {frames!r}.")
    name = canonical_name(au)
    start, stop = check_intensity(f"{name} start", start), check_intensity(f"{name} stop", stop)
    return [{**base, name: round(float(value), 3)} for value in np.linspace(start, stop, int(frames))]


def au_slider(au: ActionUnit) -> gr.Slider:
    low, high = TRAINED_RANGE
    return gr.Slider(
        *AU_SLIDER_RANGE, value=0.0, step=0.1, label=f"{au.name} · {au.facs_name}",
        info=f"{au.description} (trained range {low:g}–{high:g})",
    )


def build_ui(studio: Studio) -> gr.Blocks:
    """The whole page for one Studio; launch it with queueing as app.py does."""
    outputs = OutputFolder()
    generate = on_gpu(generate_readably)
    # Random weights give noise at any size, so that demo starts small and fast enough to feel live on a CPU.
    default_steps, default_size = (4, 256) if studio.random_weights else (25, 512)

    def forget_session(session: Session) -> None:
        outputs.discard(session.files())

    with gr.Blocks(title="FineFace UI", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        session = gr.State(Session(), delete_callback=forget_session)  # deep-copied per tab
        gr.Markdown("# FineFace UI\nDescribe a portrait, then dial its expression with FACS Action Units.")
        if studio.random_weights:
            gr.Markdown(
                "⚠️ **Demo mode with random weights**: the models are tiny and untrained, so every image "
                "is noise. Everything else (sliders, faces, history, sweeps, API) works as usual."
            )
        with gr.Row():
            with gr.Column(scale=5):
                prompt = gr.Textbox(label="Prompt", lines=2, value="a close-up photo of a woman in a park",
                                    info="Enter renders; Shift+Enter adds a line.")
                negative_prompt = gr.Textbox(label="Negative prompt", placeholder="optional")
                with gr.Row():
                    generate_button = gr.Button("Generate", variant="primary")
                    stop_button = gr.Button("Stop", variant="stop")
                with gr.Accordion("Face photos (optional)", open=False):
                    photos = gr.File(label="Photos of one person", file_count="multiple", file_types=["image"],
                                     type="filepath", elem_id="face-photos")
                    face_note = gr.Markdown("No photo: the text-only model is used.", elem_id="face-note")
                    face_preview = gr.Gallery(label="Face used in each photo", columns=4, height=200,
                                              allow_preview=False, fit_columns=False)
                with gr.Row():
                    preset = gr.Dropdown(list(PRESETS), value=None, label="Preset", scale=3,
                                         info="sets the sliders below")
                    reset_button = gr.Button("Reset all AUs", scale=1)
                gr.Markdown(
                    "Intensity 0 = absent, 1–5 = FACS A (trace) to E (maximum): the range the model was trained "
                    "on. Above 5 exaggerates; below 0 performs the opposite action."
                )
                au_inputs: dict[str, gr.Slider] = {}
                for title in dict.fromkeys(REGION_TITLES[au.region] for au in ACTION_UNITS):
                    with gr.Accordion(title, open=True):
                        for au in ACTION_UNITS:
                            if REGION_TITLES[au.region] == title:
                                au_inputs[au.name] = au_slider(au)
                with gr.Row():
                    seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, maximum=MAX_SEED, scale=3)
                    keep_seed = gr.Checkbox(label="Keep seed", value=True, scale=1,
                                            info="off: a new seed every render")
                    new_seed_button = gr.Button("New seed", scale=1)
                with gr.Accordion("Advanced", open=False):
                    steps = gr.Slider(1, 100, value=default_steps, step=1, label="Steps")
                    guidance = gr.Slider(0, 20, value=7.5, step=0.5, label="Guidance scale")
                    scheduler = gr.Radio([(f"{name}: {text}", name) for name, text in SCHEDULERS.items()],
                                         value="dpm++", label="Scheduler")
                    au_scale = gr.Slider(0, 2, value=1.0, step=0.05, label="AU strength",
                                         info="how strongly the AU sliders act (1 = as trained)")
                    ip_scale = gr.Slider(0, 2, value=1.0, step=0.05, label="Identity strength",
                                         info="how closely the face follows the photos")
                    lora_scale = gr.Slider(0, 1, value=0.25, step=0.05, label="LoRA strength",
                                           info="0.25 is the strength FineFace was trained with")
                    with gr.Row():
                        size_range = {"minimum": SIZES.start, "maximum": SIZES.stop - 1, "step": SIZES.step}
                        width = gr.Slider(value=default_size, label="Width", **size_range)
                        height = gr.Slider(value=default_size, label="Height", **size_range)
                with gr.Accordion("Load settings from a PNG", open=False):
                    settings_png = gr.File(label="A PNG saved by FineFace UI", file_types=[".png"], type="filepath")
            with gr.Column(scale=6, elem_id="output-column"):
                with gr.Tabs():
                    with gr.Tab("Image"):
                        image = gr.Image(label="Result", format="png", interactive=False, height=512, elem_id="result")
                    with gr.Tab("Before / after"):
                        compare = gr.ImageSlider(label="All AUs at 0 ↔ current AUs", format="png", height=512)
                    with gr.Tab("Sweep"):
                        with gr.Row():
                            sweep_au = gr.Dropdown([(f"{au.name} · {au.facs_name}", au.name) for au in ACTION_UNITS],
                                                   value="AU12", label="AU to sweep")
                            sweep_frames = gr.Slider(2, 32, value=8, step=1, label="Frames")
                        with gr.Row():
                            sweep_from = gr.Slider(*AU_SLIDER_RANGE, value=0.0, step=0.1, label="From")
                            sweep_to = gr.Slider(*AU_SLIDER_RANGE, value=5.0, step=0.1, label="To")
                        sweep_button = gr.Button("Run sweep", variant="primary")
                        sweep_gallery = gr.Gallery(label="Frames", columns=4, format="png", fit_columns=False)
                        sweep_gif = gr.Image(label="Animation", type="filepath", interactive=False)
                download = gr.DownloadButton("Download PNG (settings embedded)", value=None, interactive=False)
                history = gr.Gallery(label="This session (click to restore its settings)", columns=6, height=150,
                                     allow_preview=False, fit_columns=False, elem_id="history")
                with gr.Accordion("Settings of this image", open=False):
                    metadata_view = gr.JSON()
        keyboard_changes = gr.Number(value=0, visible="hidden")

        setting_inputs: dict[str, gr.components.Component] = {
            "prompt": prompt, "negative_prompt": negative_prompt, "seed": seed, "num_inference_steps": steps,
            "guidance_scale": guidance, "scheduler": scheduler, "au_scale": au_scale, "ip_scale": ip_scale,
            "lora_scale": lora_scale, "width": width, "height": height, **au_inputs,
        }
        sliders = list(au_inputs.values())
        all_sliders = [component for component in setting_inputs.values() if isinstance(component, gr.Slider)]

        # ---- handlers ----------------------------------------------------------------------------

        def split(values: dict[str, Any]) -> tuple[str, dict[str, float], dict[str, Any]]:
            """Setting values by name -> (prompt, AUs, other options), the arguments of create_settings."""
            return values["prompt"], {name: values[name] for name in AU_NAMES}, {n: values[n] for n in OPTION_NAMES}

        def render(state: Session, photo_paths: list[str] | None, keep: bool,
                   progress: gr.Progress = gr.Progress(track_tqdm=True), **values: Any) -> Any:
            if not keep:
                values["seed"] = random_seed()
            text, aus, options = split(values)
            settings = create_settings(text, aus, **options)
            photo_paths = list(photo_paths or [])
            key = (settings, photo_paths)
            if keep and state.history and state.history[0].key == key:
                return gr.skip()  # e.g. a number box losing focus without a change: the same image again
            neutral = replace(settings, aus=(au_dict(None),))
            neutral_key = (neutral, photo_paths)
            reuse_neutral = state.neutral is not None and state.neutral.key == neutral_key
            # The "before" image rides in the same batch, so both share one call and the same starting noise.
            if reuse_neutral or settings == neutral:
                batch = settings
            else:
                batch = replace(settings, aus=neutral.aus + settings.aus)
            try:
                output = run_studio(generate, studio, batch, photo_paths, progress, state).output
            except Stopped:
                gr.Info("Stopped.")
                return gr.skip()
            result = save_result(output, len(output.images) - 1, key)
            if reuse_neutral:
                twin = None
            else:  # a one-image batch here means the settings are neutral themselves
                twin = result if len(output.images) == 1 else save_result(output, 0, neutral_key)
            outputs.discard(state.remember(result, twin))
            return (str(result.path), (str(state.neutral.path), str(result.path)), history_items(state),
                    download_update(result), settings.seed, result.metadata)

        def save_result(output: FineFaceOutput, index: int, key: Any) -> Result:
            metadata = output.metadata_for(index)
            return Result(outputs.png(output.images[index], metadata), metadata, key)

        def history_items(state: Session) -> list[tuple[str, str]]:
            return [(str(result.path), caption(result.metadata)) for result in state.history]

        def download_update(result: Result) -> dict[str, Any]:
            return gr.update(value=str(result.path), interactive=True)

        def request_stop(state: Session) -> None:
            state.stops += 1

        def show_faces(photo_paths: list[str] | None, progress: gr.Progress = gr.Progress(track_tqdm=True),
                       ) -> tuple[list[tuple[Image.Image, str]], str]:
            if not photo_paths:
                return [], "No photo: the text-only model is used."
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

        def apply_preset(name: str | None) -> list[float]:
            return list(preset_aus(name).values()) if name in PRESETS else [gr.skip()] * len(sliders)

        def restore_from_history(state: Session, event: gr.SelectData) -> list[Any]:
            result = state.history[event.index]
            restored = fit_to_sliders(settings_values(result.metadata), setting_inputs)
            return [*restored, True, str(result.path), download_update(result), result.metadata]

        def restore_from_png(path: str | None) -> list[Any]:
            if not path:
                return [gr.skip()] * (len(setting_inputs) + 1)
            with readable_errors():
                metadata = read_settings(path)
            gr.Info("Settings loaded from the PNG; press Generate to render them.")
            return [*fit_to_sliders(settings_values(metadata), setting_inputs), True]

        def render_sweep(state: Session, photo_paths: list[str] | None, au: str, start: float, stop: float,
                         frames: int, progress: gr.Progress = gr.Progress(track_tqdm=True), **values: Any) -> Any:
            text, aus, options = split(values)
            with readable_errors():
                au_list = sweep_values(aus, au, start, stop, frames)
            settings = create_settings(text, au_list, **options)
            try:
                output = run_studio(generate, studio, settings, list(photo_paths or []), progress, state).output
            except Stopped:
                gr.Info("Stopped.")
                return gr.skip()
            outputs.discard(state.sweep_files)
            paths = [outputs.png(picture, output.metadata_for(i)) for i, picture in enumerate(output.images)]
            state.sweep_files = [*paths, outputs.gif(output.images)]
            gallery = [(str(path), f"{au}={frame[au]:g}") for path, frame in zip(paths, settings.aus)]
            return gallery, str(state.sweep_files[-1])

        # ---- events ------------------------------------------------------------------------------

        gpu = {"concurrency_id": GPU, "concurrency_limit": 1, "trigger_mode": "always_last"}
        ui_only = {"api_visibility": "private"}
        render_event = dict(
            fn=render, inputs=[session, photos, keep_seed], inputs_kwargs=setting_inputs,
            outputs=[image, compare, history, download, seed, metadata_view], **gpu, **ui_only,
        )
        demo.load(None, js=TRACK_POINTER_JS, **ui_only)
        for slider in all_sliders:
            slider.input(None, keyboard_changes, keyboard_changes, js=COUNT_KEYBOARD_CHANGE_JS, **ui_only)
        renders = [
            gr.on([generate_button.click, prompt.submit, negative_prompt.submit, seed.submit, scheduler.input,
                   keyboard_changes.change, *(slider.release for slider in all_sliders)], **render_event),
            preset.input(apply_preset, preset, sliders, queue=False, **ui_only).then(**render_event),
            reset_button.click(lambda: [0.0] * len(sliders), None, sliders, queue=False, **ui_only)
            .then(**render_event),
            new_seed_button.click(random_seed, None, seed, queue=False, **ui_only).then(**render_event),
        ]
        photos.change(show_faces, photos, [face_preview, face_note], **ui_only)
        history.select(restore_from_history, session, [*setting_inputs.values(), keep_seed, image, download,
                                                       metadata_view], **ui_only)
        settings_png.upload(restore_from_png, settings_png, [*setting_inputs.values(), keep_seed], **ui_only)
        sweeps = sweep_button.click(
            render_sweep, [session, photos, sweep_au, sweep_from, sweep_to, sweep_frames], [sweep_gallery, sweep_gif],
            inputs_kwargs=setting_inputs, **gpu, **ui_only,
        )
        # The counter stops the run in progress (cancelling cannot interrupt a running thread);
        # `cancels` drops the requests still waiting in the queue.
        stop_button.click(request_stop, session, None, queue=False, cancels=[*renders, sweeps], **ui_only)
        add_api(demo, studio, generate, outputs)
    return demo


def face_caption(face: DetectedFace) -> str:
    others = f", the largest of {face.face_count} faces" if face.face_count > 1 else ""
    return f"{face.label}: score {face.score:.2f}{others}"


def add_api(demo: gr.Blocks, studio: Studio, generate: Callable[..., StudioResult], outputs: OutputFolder) -> None:
    """The HTTP API: `/generate` and `/sweep`, typed parameters, validated like the UI's values."""
    with gr.Column(visible=False):  # API-only inputs and outputs, named like the parameters
        params = {
            "prompt": gr.Textbox(label="prompt"),
            "aus": gr.Textbox(label="aus", value="", info="'AU6=2.5, AU12=5', or JSON: a dict or 12 numbers"),
            "seed": gr.Number(label="seed", value=0),
            "num_inference_steps": gr.Number(label="num_inference_steps", value=25),
            "guidance_scale": gr.Number(label="guidance_scale", value=7.5),
            "au_scale": gr.Number(label="au_scale", value=1.0),
            "ip_scale": gr.Number(label="ip_scale", value=1.0),
            "lora_scale": gr.Number(label="lora_scale", value=0.25),
            "negative_prompt": gr.Textbox(label="negative_prompt", value=""),
            "height": gr.Number(label="height", value=512),
            "width": gr.Number(label="width", value=512),
            "scheduler": gr.Textbox(label="scheduler", value="dpm++"),
            "photos": gr.File(label="photos", value=[], file_count="multiple", type="filepath"),
        }
        sweep_params = {
            "au": gr.Textbox(label="au", value="AU12"),
            "start": gr.Number(label="start", value=0.0),
            "stop": gr.Number(label="stop", value=5.0),
            "frames": gr.Number(label="frames", value=8),
        }
        image = gr.Image(label="image", type="filepath", format="png")
        frames = gr.Gallery(label="frames", format="png")
        animation = gr.File(label="animation")
        metadata = gr.JSON(label="metadata")

    def api_generate(prompt: str, aus: str, photos: list[str] | None, progress: gr.Progress = gr.Progress(),
                     **options: Any) -> tuple[str, dict[str, Any]]:
        """One image (PNG with its settings embedded) and its metadata."""
        outputs.discard_older_than(API_FILE_AGE_S, prefix="api-")
        settings = create_settings(prompt, parse_api_aus(aus), **options)
        output = run_studio(generate, studio, settings, list(photos or []), progress).output
        return str(outputs.png(output.images[0], output.metadata_for(0), prefix="api-")), output.metadata

    def api_sweep(prompt: str, aus: str, au: str, start: float, stop: float, frames: float,
                  photos: list[str] | None, progress: gr.Progress = gr.Progress(), **options: Any,
                  ) -> tuple[list[str], str, dict[str, Any]]:
        """`frames` images with AU `au` stepping from `start` to `stop`, everything else fixed; plus a GIF."""
        outputs.discard_older_than(API_FILE_AGE_S, prefix="api-")
        with readable_errors():
            au_list = sweep_values(au_dict(parse_api_aus(aus)), au, start, stop, frames)
        settings = create_settings(prompt, au_list, **options)
        output = run_studio(generate, studio, settings, list(photos or []), progress).output
        paths = [outputs.png(picture, output.metadata_for(i), prefix="api-") for i, picture in enumerate(output.images)]
        return [str(path) for path in paths], str(outputs.gif(output.images, prefix="api-")), output.metadata

    gpu = {"concurrency_id": GPU, "concurrency_limit": 1}
    gr.on([], api_generate, inputs_kwargs=params, outputs=[image, metadata], api_name="generate", **gpu)
    gr.on([], api_sweep, inputs_kwargs={**params, **sweep_params}, outputs=[frames, animation, metadata],
          api_name="sweep", **gpu)
