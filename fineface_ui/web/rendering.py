"""Running the Studio for a web request: one GPU call, a progress bar, Stop, and readable errors.

The page's handlers and the HTTP API all run the models through `Backend`: `render` (the result),
`stream` (the result, with glimpses of it while it denoises) and `preview` (quick, rough images); and for
a photo's edit, `read_for_edit`, `edit` (streamed too) and `edit_preview`.
"""

from __future__ import annotations

import logging
import queue
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import gradio as gr
import torch
from PIL import Image

from ..edit_settings import EditSettings
from ..engine.pipeline import FineFaceOutput
from ..engine.previews import PreviewCallback
from ..errors import FineFaceError, GPUMemoryError
from ..faces.au_reader import AUReading
from ..faces.edit_inputs import EditPhoto, Point
from ..settings import GenerationSettings, Upscale
from ..studio import Studio, StudioResult
from .session import OutputFolder, Session
from .zero_gpu import edit_seconds, on_gpu

log = logging.getLogger(__name__)


class Stopped(Exception):
    """Raised from the step callback when the user pressed Stop."""


@contextmanager
def readable_errors(doing: str = "Generation") -> Iterator[None]:
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
        log.exception("%s failed", doing)
        raise gr.Error(
            f"{doing} failed unexpectedly ({type(error).__name__}). The details are in the server log; "
            "try again, or change a setting.", print_exception=False
        ) from None


def create_settings(prompt: str, aus: Any, **options: Any) -> GenerationSettings:
    """GenerationSettings from page or API values, validation errors as gr.Error."""
    with readable_errors():
        return GenerationSettings.create(prompt, aus, **options)


@dataclass
class StepReporter:
    """Progress bar and Stop for one run. A class, not a closure: ZeroGPU pickles the run's arguments
    into its worker process, where the session is a copy, so there Stop cannot end a running render."""

    progress: Callable[..., Any]
    session: Session | None
    desc: str = "Denoising"  # the progress bar's words

    def __post_init__(self) -> None:
        self.stops_before = self.session.stops if self.session is not None else 0
        self.abandoned = False  # set when nobody waits for the run any more

    def __call__(self, step: int, total: int) -> None:
        if self.abandoned or (self.session is not None and self.session.stops != self.stops_before):
            raise Stopped
        self.progress((step, total), desc=self.desc)


@dataclass
class Glimpse:
    """A render still under way: its latents at `step` of `total`, decoded by TAESD."""

    image: Image.Image
    step: int
    total: int


def generate_readably(studio: Studio, settings: GenerationSettings, photos: Sequence[str], on_step: StepReporter,
                      on_preview: PreviewCallback | None = None) -> StudioResult:
    """Studio.generate with its failures as gr.Error: ZeroGPU's worker passes on only gr.Error's message."""
    with readable_errors():
        return studio.generate(settings, photos, on_step, on_preview)


def stream_readably(studio: Studio, settings: GenerationSettings, photos: Sequence[str],
                    on_step: StepReporter) -> Iterator[Glimpse | StudioResult]:
    """Glimpses of the newest image as it denoises, then the result; a generator, so that on ZeroGPU one GPU
    slot runs it all and forwards every glimpse."""
    yield from _streamed(lambda glimpse: generate_readably(studio, settings, photos, on_step, glimpse), on_step)


def edit_readably(studio: Studio, photo: EditPhoto, settings: EditSettings, on_step: StepReporter,
                  on_preview: PreviewCallback | None = None) -> FineFaceOutput:
    with readable_errors("Editing"):
        return studio.edit(photo, settings, on_step, on_preview)


def stream_edit_readably(studio: Studio, photo: EditPhoto, settings: EditSettings,
                         on_step: StepReporter) -> Iterator[Glimpse | FineFaceOutput]:
    """An edit's glimpses (pasted into the photo), then its result."""
    yield from _streamed(lambda glimpse: edit_readably(studio, photo, settings, on_step, glimpse), on_step)


def _streamed(run: Callable[[PreviewCallback], Any], on_step: StepReporter) -> Iterator[Any]:
    """What `run` shows its preview callback, as Glimpses, then what it returns. The models run in a worker
    thread because the denoising loop reports from inside, where nothing can be yielded."""
    arrivals: queue.Queue = queue.Queue()
    done = object()

    def glimpse(images: list[Image.Image], step: int, total: int) -> None:
        arrivals.put(Glimpse(images[-1], step, total))

    def work() -> None:
        try:
            arrivals.put((done, run(glimpse)))
        except BaseException as error:  # the consumer raises it where it waits
            arrivals.put(error)

    threading.Thread(target=work, daemon=True).start()
    try:
        while True:
            arrival = arrivals.get()
            if isinstance(arrival, BaseException):
                raise arrival
            if isinstance(arrival, tuple) and arrival[0] is done:
                yield arrival[1]
                return
            yield arrival
    finally:
        on_step.abandoned = True  # left early (Stop, a closed tab): the run ends at its next step


def upscale_readably(studio: Studio, settings: GenerationSettings, image: str, photos: Sequence[str],
                     on_step: StepReporter, *, upscale: Upscale) -> StudioResult:
    with readable_errors("Upscaling"):
        return studio.upscale(settings, image, photos, on_step, upscale=upscale)


def preview_readably(studio: Studio, settings: GenerationSettings, photos: Sequence[str]) -> list[Image.Image]:
    with readable_errors():
        return studio.preview(settings, photos)


def edit_preview_readably(studio: Studio, photo: EditPhoto, settings: EditSettings) -> Image.Image:
    with readable_errors("Editing"):
        return studio.edit_preview(photo, settings)


@dataclass
class Backend:
    """What every handler renders with: the models, the result files, and the GPU-slot call."""

    studio: Studio
    outputs: OutputFolder = field(default_factory=OutputFolder)
    # The functions that run the models, wrapped for ZeroGPU (zero_gpu.on_gpu) once, when the app is built.
    generate: Callable[..., StudioResult] = field(default_factory=lambda: on_gpu(generate_readably))
    streamed: Callable[..., Iterator[Glimpse | StudioResult]] = field(default_factory=lambda: on_gpu(stream_readably))
    previewed: Callable[..., list[Image.Image]] = field(default_factory=lambda: on_gpu(preview_readably))
    upscaled: Callable[..., StudioResult] = field(default_factory=lambda: on_gpu(upscale_readably))
    edited: Callable[..., FineFaceOutput] = field(default_factory=lambda: on_gpu(edit_readably, edit_seconds))
    edit_streamed: Callable[..., Iterator[Glimpse | FineFaceOutput]] = field(
        default_factory=lambda: on_gpu(stream_edit_readably, edit_seconds))
    edit_previewed: Callable[..., Image.Image] = field(
        default_factory=lambda: on_gpu(edit_preview_readably, edit_seconds))

    def render(self, settings: GenerationSettings, photos: Sequence[str], progress: Callable[..., Any],
               session: Session | None = None, desc: str = "Denoising") -> StudioResult:
        """Generate with a progress bar (saying `desc`); a Stop pressed during the run aborts it at the next
        denoising step."""
        with readable_errors():
            self.load_face_models(photos)
            return self.generate(self.studio, settings, list(photos), StepReporter(progress, session, desc))

    def stream(self, settings: GenerationSettings, photos: Sequence[str], progress: Callable[..., Any],
               session: Session) -> Iterator[Glimpse | StudioResult]:
        """`render`, yielding glimpses of the newest image while it denoises and then the result."""
        with readable_errors():
            self.load_face_models(photos)
            yield from self.streamed(self.studio, settings, list(photos), StepReporter(progress, session))

    def upscale(self, settings: GenerationSettings, image: str, photos: Sequence[str], upscale: Upscale,
                progress: Callable[..., Any], session: Session | None = None) -> StudioResult:
        """`render`'s progress and Stop for an upscale of `image`, made with `settings` (and `photos`)."""
        with readable_errors("Upscaling"):
            self.load_face_models(photos)
            return self.upscaled(self.studio, settings, image, list(photos), StepReporter(progress, session),
                                 upscale=upscale)

    def preview(self, settings: GenerationSettings, photos: Sequence[str]) -> list[Image.Image]:
        """Quick, rough images of `settings`, one per AU setting (previews.py): no progress, no Stop, no result."""
        with readable_errors():
            self.load_face_models(photos)
            return self.previewed(self.studio, settings, list(photos))

    def read_aus(self, photos: Sequence[str]) -> list[AUReading]:
        """The expression of the largest face in each photo. Not in a GPU slot: the reader runs on the CPU
        in a tenth of a second, and on ZeroGPU a slot per measurement would double each render's wait."""
        with readable_errors("Reading the expression"):
            return self.studio.read_aus(list(photos))

    def read_for_edit(self, photo: str, point: Point | None = None) -> EditPhoto:
        """The photo's face found, read and prepared for an edit; on the CPU, outside a GPU slot, like read_aus.
        Loading the edit's models (a download of several GB on first use) happens here too, before any slot."""
        with readable_errors("Reading the photo"):
            edit = self.studio.read_for_edit(photo, point)
            self.studio.edit_pipeline()
            return edit

    def edit(self, photo: EditPhoto, settings: EditSettings, progress: Callable[..., Any],
             session: Session | None = None) -> FineFaceOutput:
        """The edited photo, with `render`'s progress bar and Stop."""
        with readable_errors("Editing"):
            return self.edited(self.studio, photo, settings, StepReporter(progress, session, "Editing"))

    def stream_edit(self, photo: EditPhoto, settings: EditSettings, progress: Callable[..., Any],
                    session: Session) -> Iterator[Glimpse | FineFaceOutput]:
        """`edit`, yielding glimpses of the photo while it denoises and then the result."""
        with readable_errors("Editing"):
            yield from self.edit_streamed(self.studio, photo, settings, StepReporter(progress, session, "Editing"))

    def edit_preview(self, photo: EditPhoto, settings: EditSettings) -> Image.Image:
        """A quick, rough edit of the photo (a few steps, TAESD): what a slider drag shows."""
        with readable_errors("Editing"):
            return self.edit_previewed(self.studio, photo, settings)

    def load_face_models(self, photos: Sequence[str]) -> None:
        """Load the face models when there are photos, or wait for the load under way (on first use it
        includes a download of several GB), before the model call: on ZeroGPU no GPU time is spent
        waiting. The page calls it in an event of its own before a render (handlers.await_face_models),
        so that the page's GPU slot is not held meanwhile; API calls wait here, in their own slots."""
        if photos:
            self.studio.face_embedder()
            self.studio.identity_pipeline()

    def face_models_loaded(self) -> bool:
        return self.studio.is_loaded("faces") and self.studio.is_loaded("identity")
