"""Running the Studio for a web request: one GPU call, a progress bar, Stop, and readable errors.

The page's handlers and the HTTP API all run the models through `Backend`: `render` (the result),
`stream` (the result, with glimpses of it while it denoises) and `preview` (quick, rough images).
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

from ..engine.previews import PreviewCallback
from ..errors import FineFaceError, GPUMemoryError
from ..faces.au_reader import AUReading
from ..settings import GenerationSettings, Upscale
from ..studio import Studio, StudioResult
from .session import OutputFolder, Session
from .zero_gpu import on_gpu

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
    """Glimpses of the newest image as it denoises, then the result. The models run in a worker thread
    because diffusers reports from inside its loop, where nothing can be yielded; a generator, so that on
    ZeroGPU one GPU slot runs it all and forwards every glimpse."""
    arrivals: queue.Queue = queue.Queue()

    def glimpse(images: list[Image.Image], step: int, total: int) -> None:
        arrivals.put(Glimpse(images[-1], step, total))

    def run() -> None:
        try:
            arrivals.put(generate_readably(studio, settings, photos, on_step, glimpse))
        except BaseException as error:  # the consumer raises it where it waits
            arrivals.put(error)

    threading.Thread(target=run, daemon=True).start()
    try:
        while not isinstance(arrival := arrivals.get(), StudioResult):
            if isinstance(arrival, BaseException):
                raise arrival
            yield arrival
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
