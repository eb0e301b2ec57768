"""The Gradio page: its layout and its events, in two tabs: Create (a portrait from a prompt, and face photos if
given) and Edit a photo. What each event does lives in handlers.py (editing.py for the Edit a photo tab).

Controls are named like the settings they set (settings.SETTINGS, the AU names), so the handlers
receive them by name. Every page event that runs the models shares one concurrency slot, so requests
queue in order.
"""

from __future__ import annotations

import functools
import inspect
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from ..aus import ACCEPTED_RANGE, ACTION_UNITS, AU_NAMES, TRAINED_RANGE, ActionUnit
from ..edit_settings import EDIT_SPEC
from ..keyframes import DEFAULT_EASING, DEFAULT_FPS, EASINGS, FPS_RANGE, MAX_FRAMES, MAX_SECONDS
from ..presets import PRESETS
from ..settings import MAX_IMAGES_PER_CALL, SCHEDULERS, SPEC, TEXT, UPSCALE_SPEC, Setting
from ..studio import RANDOM_WEIGHTS_DEFAULTS, Studio
from . import animating, editing, handlers, readouts, restoring
from .before_after import show_before_after
from .handlers import PAGE_VALUES, PIPELINE_SETTINGS
from .http_api import add_api
from .rendering import Backend
from .session import Session

REGION_TITLES = {"brows": "Brows", "eyes": "Eyes & cheeks", "nose": "Nose", "mouth": "Mouth",
                 "chin": "Chin & jaw", "jaw": "Chin & jaw"}
ASSETS = resources.files(__package__) / "assets"
# Page styles (pass to launch(css=...)); assets/fineface.css says why each rule is there.
CSS = (ASSETS / "fineface.css").read_text()
# Slider `.input` fires on every drag tick and `.release` on pointer-up, but arrow keys fire only
# `.input`; typing in a slider's number box fires `.input` too, with values Gradio refuses while out
# of range. So the page tracks whether a pointer is pressed, and each `.input` bumps hidden counters:
# a move of the range (pointer or keys) is previewed, a keyboard move also renders in full (its change
# joins the release triggers).
TRACK_POINTER_JS = (ASSETS / "track_pointer.js").read_text()
COUNT_SLIDER_MOVES_JS = (ASSETS / "count_slider_moves.js").read_text()
NUMBER_BOXES_JS = (ASSETS / "number_boxes.js").read_text()  # Enter in a slider's number box renders


def au_map_svg() -> str:
    """The AU map, a drawing of where each AU moves the face, from the project's assets/ folder: packaged
    inside fineface_ui by an install (pyproject.toml maps it), beside the package in a checkout or a Space."""
    installed = resources.files("fineface_ui") / "assets"
    folder = installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "assets"
    return (folder / "au_map.svg").read_text()


UI_ONLY = {"api_visibility": "private"}  # the page's events; the HTTP API is http_api.py
GPU = "gpu"  # the page's events that run the diffusion models share this slot: one request at a time
RENDERS = {"concurrency_id": GPU, "concurrency_limit": 1, "trigger_mode": "always_last", **UI_ONLY}
# The image's own glimpses show the progress: no overlay hiding the previous image, only the time.
STREAMED = {**RENDERS, "show_progress": "minimal"}
# A drag's previews: while one runs, Gradio keeps only the newest value waiting, so they never pile up.
PREVIEWS = {**RENDERS, "show_progress": "hidden"}
# An animation holds its slot for minutes: a slot of its own, so that the tabs' renders go on between its
# chunks (each chunk takes the pipeline's lock for one batch).
ANIMATIONS = {**RENDERS, "concurrency_id": "animation"}
# Reading expressions (readouts.py): slots of their own, so a render never queues behind a measurement;
# several at once (an ONNX Runtime session runs calls in parallel), so one tab's sweep holds up no other tab.
READS = {"concurrency_id": "reader", "concurrency_limit": 4, "trigger_mode": "always_last", **UI_ONLY}

Page = dict[str, Any]  # the page's components by name: settings and AUs by their own names
# The Animate tab's starting keyframes: a look of surprise, then a smile (a preset's name is a keyframe too).
EXAMPLE_KEYS = "0:neutral; 1:AU1=3,AU2=3,AU5=3,AU26=3; 2:Happiness"


def control(name: str, value: Any = None, spec: dict[str, Setting] = SPEC, **layout: Any) -> gr.components.Component:
    """The page's control for one setting, with the range, default, label and help text of its spec (`layout`
    may give another label)."""
    setting = spec[name]
    value = setting.default if value is None else value
    layout.setdefault("label", setting.label)
    if setting.choices:
        return gr.Radio([(f"{choice}: {SCHEDULERS[choice]}", choice) for choice in setting.choices], value=value,
                        **layout)
    if setting.kind is str:
        return gr.Textbox(value=value, placeholder=f"optional: {setting.help}", **layout)
    if name == "seed":
        return gr.Number(value=value, precision=0, minimum=setting.low, maximum=setting.high, **layout)
    return gr.Slider(setting.low, setting.high, value=value, step=setting.step, info=setting.help, **layout)


def au_slider(au: ActionUnit, **layout: Any) -> gr.Slider:
    low, high = TRAINED_RANGE
    return gr.Slider(*ACCEPTED_RANGE, value=0.0, step=0.1, label=f"{au.name} · {au.facs_name}",
                     info=f"{au.description} (trained range {low:g}–{high:g})", **layout)


def au_sliders(controls: Page, elem_prefix: str | None = None) -> None:
    """The twelve AU sliders, by the part of the face each moves; `elem_prefix` names their elements."""
    for title in dict.fromkeys(REGION_TITLES[au.region] for au in ACTION_UNITS):
        with gr.Accordion(title, open=True):
            for au in ACTION_UNITS:
                if REGION_TITLES[au.region] == title:
                    controls[au.name] = au_slider(au, elem_id=f"{elem_prefix}-{au.name}" if elem_prefix else None)


def expression_panel(page: Page) -> None:
    with gr.Row():
        page["preset"] = gr.Dropdown(list(PRESETS), value=None, label="Preset", scale=3, info="sets the sliders below")
        page["reset"] = gr.Button("Reset all AUs", scale=1)
    gr.Markdown("Intensity 0 = absent, 1–5 = FACS A (trace) to E (maximum): the range the model was trained "
                "on. Above 5 exaggerates; below 0 performs the opposite action.")
    with gr.Accordion("AU map: where each AU moves the face", open=False):
        gr.HTML(au_map_svg(), elem_id="au-map")
    with gr.Accordion("Copy an expression from a photo", open=False):
        # image_mode None: Gradio would save a converted copy of a grey or RGBA photo, beyond our reach.
        page["reference"] = gr.Image(label="A photo with the expression to copy", type="filepath", image_mode=None,
                                     sources=["upload", "clipboard"], height=240, elem_id="reference-photo")
        page["copy_note"] = gr.Markdown("The sliders take the expression of the photo's largest face, read by "
                                        "LibreFace's AU model (non-commercial research licence).", elem_id="copy-note")
    au_sliders(page)


def input_column(page: Page, steps: int, size: int) -> None:
    # One line that grows: Gradio submits on Enter only in a box of one line (Shift+Enter adds a line there).
    page["prompt"] = gr.Textbox(label="Prompt", lines=1, max_lines=6, value="a close-up photo of a woman in a park",
                                info="Enter renders; Shift+Enter adds a line.")
    page["negative_prompt"] = control("negative_prompt")
    with gr.Row():
        page["generate"] = gr.Button("Generate", variant="primary")
        page["stop"] = gr.Button("Stop", variant="stop")
    with gr.Accordion("Face photos (optional)", open=False):
        page["photos"] = gr.File(label="Photos of one person", file_count="multiple", file_types=["image"],
                                 type="filepath", elem_id="face-photos")
        page["face_note"] = gr.Markdown(handlers.NO_PHOTO, elem_id="face-note")
        page["copy_face"] = gr.Button("Copy the first photo's expression to the sliders", size="sm")
        page["face_preview"] = gr.Gallery(label="Face used in each photo", columns=4, height=200,
                                          allow_preview=False, fit_columns=False)
    expression_panel(page)
    with gr.Row():
        page["seed"] = control("seed", scale=3)
        page["keep_seed"] = gr.Checkbox(label="Keep seed", value=True, scale=1, info="off: a new seed every render")
        page["new_seed"] = gr.Button("New seed", scale=1)
    with gr.Accordion("Advanced", open=False):
        page["num_inference_steps"] = control("num_inference_steps", steps)
        for name in ("guidance_scale", "scheduler", "au_scale", "ip_scale", "lora_scale"):
            # Without photos the text pipeline runs; handlers.pipeline_controls switches with the photos.
            page[name] = control(name, visible=TEXT in SPEC[name].pipelines)
        with gr.Row():
            page["width"], page["height"] = control("width", size), control("height", size)
    with gr.Accordion("Load settings from a PNG", open=False):
        page["settings_png"] = gr.File(label="A PNG saved by FineFace UI", file_types=[".png"], type="filepath")


def output_column(page: Page) -> None:
    with gr.Tabs() as page["tabs"]:
        with gr.Tab("Image"):
            # Results are PNG files (settings inside) shown as they are; previews and glimpses travel as JPEG.
            page["image"] = gr.Image(label=handlers.RESULT_LABEL, format="jpeg", interactive=False, height=512,
                                     elem_id="result")
            # Here, not under the tabs: it downloads this image, not the sweep's frames.
            page["download"] = gr.DownloadButton("Download PNG (settings embedded)", value=None, interactive=False)
            with gr.Row(equal_height=True):
                page["upscale"] = gr.Button("Upscale", scale=1, elem_id="upscale")
                page["upscale_scale"] = control("scale", spec=UPSCALE_SPEC, scale=2)
                page["upscale_strength"] = control("strength", spec=UPSCALE_SPEC, scale=2)
            page["measure"] = gr.Checkbox(label="Measure each result: read its AUs back from the image", value=True)
            page["readout"] = gr.ScatterPlot(x="AU", y="intensity", color="kind", sort=list(AU_NAMES),
                                             label="Asked for and read back", height=240, visible=False,
                                             elem_id="readout")
            page["readout_note"] = gr.Markdown(visible=False, elem_id="readout-note")
        with gr.Tab(handlers.COMPARE_TAB) as page["compare_tab"]:
            page["compare"] = gr.ImageSlider(label="All AUs at 0 ↔ current AUs", format="png", height=512)
        with gr.Tab("Sweep"):
            with gr.Row():
                page["sweep_au"] = gr.Dropdown([(f"{au.name} · {au.facs_name}", au.name) for au in ACTION_UNITS],
                                               value="AU12", label="AU to sweep")
                # 6 frames from 0 to 5 step by whole intensities.
                page["sweep_frames"] = gr.Slider(2, MAX_IMAGES_PER_CALL, value=6, step=1, label="Frames")
            with gr.Row():
                page["sweep_from"] = gr.Slider(*ACCEPTED_RANGE, value=0.0, step=0.1, label="From")
                page["sweep_to"] = gr.Slider(*ACCEPTED_RANGE, value=5.0, step=0.1, label="To")
            page["run_sweep"] = gr.Button("Run sweep", variant="primary")
            page["sweep_gallery"] = gr.Gallery(label="Frames (click one to set the sliders to it)", columns=4,
                                               format="png", fit_columns=False)
            page["sweep_gif"] = gr.Image(label="Animation", type="filepath", interactive=False)
            page["sweep_curve"] = gr.LinePlot(x="asked", y="read", color="series", label="Read back from each frame",
                                              height=240, visible=False, elem_id="sweep-curve")
        with gr.Tab("Animate"):
            animate_panel(page)
    page["history"] = gr.Gallery(label="This session (click to restore its settings)", columns=6, height=150,
                                 allow_preview=False, fit_columns=False, elem_id="history")
    with gr.Accordion("Settings of this image", open=False):
        page["metadata"] = gr.JSON()


def animate_panel(page: Page) -> None:
    page["keys"] = gr.Textbox(label="Keyframes", lines=3, value=EXAMPLE_KEYS, elem_id="keyframes",
                              info="TIME:AUS in seconds, separated by ; or new lines. AUS: AU pairs, neutral, or a "
                              "preset's name; each keyframe sets all twelve AUs (those not named are 0).")
    page["keys_read"] = gr.Markdown(animating.keyframes_of(EXAMPLE_KEYS), elem_id="keyframes-read")
    with gr.Row(equal_height=True):
        page["key_time"] = gr.Number(label="Time (s)", value=3.0, minimum=0, scale=1)
        page["add_key"] = gr.Button("Add the sliders as a keyframe at this time", scale=3)
    with gr.Row():
        page["seconds"] = gr.Number(label="Length (s)", value=0, minimum=0, maximum=MAX_SECONDS,
                                    info="0: until the last keyframe")
        page["fps"] = gr.Slider(*FPS_RANGE, value=DEFAULT_FPS, step=1, label="Frames per second",
                                info=f"at most {MAX_FRAMES} frames in all")
        page["easing"] = gr.Radio(list(EASINGS), value=DEFAULT_EASING, label="Between keyframes",
                                  info="ease: each AU slows into and out of every keyframe")
    with gr.Row():
        page["preview_motion"] = gr.Button("Quick look", scale=1)
        page["run_animation"] = gr.Button("Render animation", variant="primary", scale=3)
    page["motion_preview"] = gr.Image(label="Quick look: every frame as a rough preview (8 steps, TAESD)",
                                      type="filepath", interactive=False, height=260, elem_id="motion-preview")
    page["frames"] = gr.Gallery(label="Frames", columns=6, height=260, format="png", fit_columns=False,
                                allow_preview=True, elem_id="animation-frames")
    page["video"] = gr.Video(label="Animation (MP4)", autoplay=True, loop=True, interactive=False, height=400,
                             elem_id="animation-video")
    page["animation_files"] = gr.File(label="Downloads: MP4, GIF, and the PNG frames with their settings (ZIP)",
                                      file_count="multiple", interactive=False, elem_id="animation-files")
    page["animation_curves"] = gr.LinePlot(x="time", y="intensity", color="series", label="Read back from each frame",
                                           height=260, visible=False, elem_id="animation-curves")


def edit_tab(edit: Page, steps: int | None) -> None:
    """The Edit a photo tab: the photo and its sliders on the left, the edit on the right. `edit` gets the tab's
    components, the controls named like what they set (editing.EDIT_VALUES)."""
    with gr.Row():
        with gr.Column(scale=5, elem_id="edit-input-column"):
            # image_mode None: the photo as it is (a converted copy would be Gradio's, beyond our reach); its
            # select event gives the pixel clicked, the face to edit.
            edit["photo"] = gr.Image(label="Photo to edit (click a face to edit that one)", type="filepath",
                                     image_mode=None, sources=["upload", "clipboard"], height=360,
                                     elem_id="edit-photo")
            edit["note"] = gr.Markdown(editing.NO_PHOTO, elem_id="edit-note")
            with gr.Row():
                edit["run"] = gr.Button("Edit", variant="primary")
                edit["stop"] = gr.Button("Stop", variant="stop")
            edit["back"] = gr.Button("Back to the photo's expression", size="sm")
            gr.Markdown("The sliders are the face's intensities: they start at those read from the photo, and the "
                        "edit moves the face to the values set.")
            au_sliders(edit, elem_prefix="edit")
            with gr.Accordion("Advanced", open=False):
                # Labels of their own: the Create tab's have other defaults and help.
                edit["seed"] = control("seed", spec=EDIT_SPEC, label="Seed of the edit")
                edit["num_inference_steps"] = control("num_inference_steps", steps, spec=EDIT_SPEC,
                                                      label="Steps of the edit")
                edit["guidance_scale"] = control("guidance_scale", spec=EDIT_SPEC, label="Guidance scale of the edit")
        with gr.Column(scale=6, elem_id="edit-output-column"):
            with gr.Tabs():
                with gr.Tab("Edited photo"):
                    # Results are PNG files (settings inside) shown as they are; previews and glimpses travel as JPEG.
                    edit["result"] = gr.Image(label=editing.RESULT_LABEL, format="jpeg", interactive=False, height=512,
                                              elem_id="edit-result")
                    edit["download"] = gr.DownloadButton("Download PNG (the settings embedded, not the photo)",
                                                         value=None, interactive=False, elem_id="edit-download")
                    edit["measure"] = gr.Checkbox(label="Measure each edit: read its AUs back from the edited face",
                                                  value=True)
                    edit["readout"] = gr.ScatterPlot(x="AU", y="intensity", color="kind", sort=list(AU_NAMES),
                                                     label="Read from the photo, asked for, and read back", height=240,
                                                     visible=False, elem_id="edit-readout")
                    edit["readout_note"] = gr.Markdown(visible=False, elem_id="edit-readout-note")
                with gr.Tab("The photo ↔ the edit"):
                    edit["compare"] = gr.ImageSlider(label="The photo ↔ the edit", format="png", height=512,
                                                     elem_id="edit-compare")
            edit["history"] = gr.Gallery(label="Edits in this session (click to restore one)", columns=6, height=150,
                                         allow_preview=False, fit_columns=False, elem_id="edit-history")
            with gr.Accordion("Settings of this edit", open=False):
                edit["metadata"] = gr.JSON()


def with_backend(handler: Callable[..., Any], backend: Backend) -> Callable[..., Any]:
    """`handler` with its first argument bound. Not functools.partial: Gradio finds gr.Progress and
    gr.SelectData parameters through the signature and type hints, which a partial hides."""
    if inspect.isgeneratorfunction(handler):  # Gradio streams the outputs of generator functions only
        @functools.wraps(handler)
        def bound(*args: Any, **kwargs: Any) -> Any:
            yield from handler(backend, *args, **kwargs)
    else:
        @functools.wraps(handler)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return handler(backend, *args, **kwargs)

    parameters = list(inspect.signature(handler).parameters.values())[1:]
    bound.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return bound


def wire(page: Page, backend: Backend, demo: gr.Blocks) -> None:
    """Every event of the page, in one place."""
    values = {name: page[name] for name in PAGE_VALUES}
    aus = [page[name] for name in AU_NAMES]
    sliders = [component for component in values.values() if isinstance(component, gr.Slider)]
    render = dict(fn=with_backend(handlers.render, backend), inputs=[page["session"], page["photos"],
                  page["keep_seed"], page["compare_shown"]], inputs_kwargs=values, outputs=[page[name] for name in (
                  "image", "compare", "history", "download", "seed", "metadata")], **STREAMED)
    # Before each render or sweep, outside the GPU slot: the face models, when there are photos (the first
    # time, the face panel shows their download; the render waits for it rather than fail).
    faces_first = dict(fn=with_backend(handlers.await_face_models, backend), inputs=page["photos"], queue=False,
                       show_progress="hidden", **UI_ONLY)
    counters = [page["keyboard_changes"], page["range_moves"]]
    for slider in sliders:
        slider.input(None, counters, counters, js=COUNT_SLIDER_MOVES_JS, **UI_ONLY)
    page["range_moves"].change(with_backend(handlers.preview, backend), [page["session"], page["photos"]],
                               page["image"], inputs_kwargs=values, **PREVIEWS)
    copies = [
        page["reference"].upload(with_backend(readouts.copy_from_reference, backend), page["reference"],
                                 [*aus, page["preset"], page["copy_note"], page["reference"]], **READS),
        page["copy_face"].click(with_backend(readouts.copy_from_face_photo, backend), [page["session"], page["photos"]],
                                [*aus, page["preset"], page["face_note"]], **READS),
    ]
    renders = [
        # The page opens with an image of the default settings rather than an empty result.
        gr.on([demo.load, page["generate"].click, page["prompt"].submit, page["negative_prompt"].submit,
               page["seed"].submit, page["scheduler"].input, page["keyboard_changes"].change,
               *(s.release for s in sliders)], **faces_first).success(**render),
        page["preset"].input(handlers.apply_preset, page["preset"], aus, queue=False, **UI_ONLY)
        .then(**faces_first).success(**render),
        page["reset"].click(handlers.reset_aus, None, aus, queue=False, **UI_ONLY)
        .then(**faces_first).success(**render),
        page["new_seed"].click(handlers.random_seed, None, page["seed"], queue=False, **UI_ONLY)
        .then(**faces_first).success(**render),
        page["sweep_gallery"].select(restoring.restore_sweep_frame, page["session"], [*aus, page["preset"]],
                                     queue=False, **UI_ONLY).then(**faces_first).success(**render),
        *(copy.success(**faces_first).success(**render) for copy in copies),
    ]
    # After each render, once its image is shown: what the image shows, read back.
    measure = dict(fn=with_backend(readouts.measure_result, backend), inputs=[page["session"], page["measure"]],
                   outputs=[page["readout"], page["readout_note"], page["download"], page["metadata"]],
                   show_progress="hidden", **READS)
    for chain in renders:
        chain.then(**measure)
    page["measure"].input(**measure)
    page["photos"].change(with_backend(handlers.show_faces, backend), [page["session"], page["photos"]],
                          [page["face_preview"], page["face_note"]], **UI_ONLY)
    page["photos"].change(handlers.pipeline_controls, page["photos"],
                          [page[setting.name] for setting in PIPELINE_SETTINGS], queue=False, **UI_ONLY)
    restored = [*values.values(), page["keep_seed"], page["preset"]]
    page["history"].select(restoring.restore_from_history, page["session"],
                           [*restored, page["photos"], page["image"], page["download"], page["metadata"]], **UI_ONLY)
    page["settings_png"].upload(restoring.restore_from_png, page["settings_png"], restored, **UI_ONLY)
    # The preset names the sliders' values only until they change.
    gr.on([*(au.input for au in aus), page["reset"].click], None, None, page["preset"], js="() => null", **UI_ONLY)
    animations = wire_animate_tab(page, backend, values, faces_first)
    edits = wire_edit_tab(page, backend)
    upscales = page["upscale"].click(with_backend(handlers.upscale_result, backend),
                                     [page["session"], page["upscale_scale"], page["upscale_strength"]],
                                     [page[name] for name in ("image", "history", "download", "metadata")], **RENDERS)
    upscales.success(**measure)
    sweep_inputs = [page[name] for name in ("session", "photos", "sweep_au", "sweep_from", "sweep_to", "sweep_frames")]
    page["tabs"].select(handlers.compare_view_shown, None, page["compare_shown"], queue=False, **UI_ONLY)
    compares = page["compare_tab"].select(with_backend(show_before_after, backend), page["session"], page["compare"],
                                          **RENDERS)
    sweeps = page["run_sweep"].click(**faces_first).success(with_backend(handlers.render_sweep, backend), sweep_inputs,
                                                            [page["sweep_gallery"], page["sweep_gif"]],
                                                            inputs_kwargs=values, **RENDERS)
    sweeps.success(with_backend(readouts.measure_sweep, backend), [page["session"], page["measure"]],
                   page["sweep_curve"], show_progress="hidden", **READS)
    # The counter stops the run in progress (cancelling cannot interrupt a running thread);
    # `cancels` drops the requests still waiting in the queue. The counter is the tab's, so it stops an
    # edit too: the edits waiting go as well.
    page["stop"].click(handlers.request_stop, page["session"], page["image"], queue=False,
                       cancels=[*copies, *renders, compares, sweeps, upscales, *animations, *edits], **UI_ONLY)


def wire_animate_tab(page: Page, backend: Backend, values: dict[str, Any], faces_first: dict[str, Any]) -> list:
    """The Animate tab's events; returns those that Stop cancels."""
    page["keys"].change(animating.keyframes_of, page["keys"], page["keys_read"], queue=False, **UI_ONLY)
    page["add_key"].click(animating.add_keyframe, [page["keys"], page["key_time"]], page["keys"],
                          inputs_kwargs={name: page[name] for name in AU_NAMES}, queue=False, **UI_ONLY)
    inputs = [page[name] for name in ("session", "photos", "keys", "seconds", "fps", "easing")]
    renders = page["run_animation"].click(**faces_first).success(
        with_backend(animating.render_animation, backend), inputs,
        [page["frames"], page["video"], page["animation_files"]], inputs_kwargs=values, **ANIMATIONS)
    renders.success(with_backend(readouts.measure_animation, backend), [page["session"], page["measure"]],
                    page["animation_curves"], show_progress="hidden", **READS)
    quick_looks = page["preview_motion"].click(**faces_first).success(
        with_backend(animating.preview_motion, backend), inputs, page["motion_preview"], inputs_kwargs=values,
        **ANIMATIONS)
    return [renders, quick_looks]


def wire_edit_tab(page: Page, backend: Backend) -> list:
    """The Edit a photo tab's events; returns those that a Stop cancels."""
    edit, session = page["edit"], page["session"]
    values = {name: edit[name] for name in editing.EDIT_VALUES}
    aus = [edit[name] for name in AU_NAMES]
    sliders = [component for component in values.values() if isinstance(component, gr.Slider)]
    counters = [edit["keyboard_changes"], edit["range_moves"]]
    for slider in sliders:
        slider.input(None, counters, counters, js=COUNT_SLIDER_MOVES_JS, **UI_ONLY)
    previews = edit["range_moves"].change(with_backend(editing.preview_edit, backend), session, edit["result"],
                                          inputs_kwargs=values, **PREVIEWS)
    # A new photo, or a click on another face: read outside the GPU slot, the sliders set; nothing cancelled.
    read = [*aus, edit["note"], edit["photo"], *(edit[name] for name in (
        "result", "compare", "download", "readout", "readout_note", "metadata"))]
    edit["photo"].upload(with_backend(editing.read_photo, backend), [session, edit["photo"]], read, **READS)
    edit["photo"].select(with_backend(editing.pick_face, backend), session, read, **READS)
    edit["photo"].clear(with_backend(editing.forget_photo, backend), session, edit["note"], queue=False, **UI_ONLY)
    render = dict(fn=with_backend(editing.render_edit, backend), inputs=session, inputs_kwargs=values,
                  outputs=[edit[name] for name in ("result", "compare", "history", "download", "metadata")], **STREAMED)
    renders = [
        gr.on([edit["run"].click, edit["seed"].submit, edit["keyboard_changes"].change,
               *(slider.release for slider in sliders)], **render),
        edit["back"].click(editing.back_to_photo, session, aus, queue=False, **UI_ONLY).then(**render),
    ]
    measure = dict(fn=with_backend(readouts.measure_edit, backend), inputs=[session, edit["measure"]],
                   outputs=[edit[name] for name in ("readout", "readout_note", "download", "metadata")],
                   show_progress="hidden", **READS)
    for chain in renders:
        chain.then(**measure)
    edit["measure"].input(**measure)
    edit["history"].select(editing.restore_edit, session, [*values.values(), *(edit[name] for name in (
        "result", "compare", "download", "metadata"))], **UI_ONLY)
    edit["stop"].click(editing.stop_edit, session, edit["result"], queue=False, cancels=[*renders, previews],
                       **UI_ONLY)
    return [*renders, previews]


def build_ui(studio: Studio) -> gr.Blocks:
    """The whole page for one Studio; launch it with queueing as server.py does."""
    backend = Backend(studio)
    # Random weights give noise at any size, so that demo starts small and fast enough to feel live on a CPU.
    defaults = RANDOM_WEIGHTS_DEFAULTS if studio.random_weights else {name: SPEC[name].default for name in SPEC}
    steps, size = defaults["num_inference_steps"], defaults["width"]
    page: Page = {}
    with gr.Blocks(title="FineFace UI", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        # Deep-copied per tab; a closed tab's files go with it.
        page["session"] = gr.State(Session(), delete_callback=backend.outputs.close)
        gr.Markdown("# FineFace UI\nDescribe a portrait, or drop a photo, then dial its expression with FACS "
                    "Action Units.")
        if studio.random_weights:
            gr.Markdown("⚠️ **Demo mode with random weights**: the models are tiny and untrained, so every image "
                        "is noise, and the AU reader is a random stand-in whose readings mean nothing. Everything "
                        "else (sliders, faces, history, sweeps, copying an expression, photo edits, API) works as "
                        "usual.")
        with gr.Tabs(elem_id="modes"):
            with gr.Tab("Create", elem_id="create-tab"):
                with gr.Row():
                    with gr.Column(scale=5, elem_id="input-column"):
                        input_column(page, steps, size)
                    with gr.Column(scale=6, elem_id="output-column"):
                        output_column(page)
            with gr.Tab("Edit a photo", elem_id="edit-tab"):
                page["edit"] = edit = {}
                edit_tab(edit, steps if studio.random_weights else None)
        page["keyboard_changes"] = gr.Number(value=0, visible="hidden")
        page["range_moves"] = gr.Number(value=0, visible="hidden")
        edit["keyboard_changes"] = gr.Number(value=0, visible="hidden")  # the Edit tab's own slider moves
        edit["range_moves"] = gr.Number(value=0, visible="hidden")
        page["compare_shown"] = gr.State(False)  # whether the Before / after tab is the one shown
        demo.load(None, js=TRACK_POINTER_JS, **UI_ONLY)
        demo.load(None, js=NUMBER_BOXES_JS, **UI_ONLY)
        add_api(backend)  # first: the endpoints take their plain names, before an event's function name could
        wire(page, backend, demo)
    return demo
