"""Running the Studio for a web request: one GPU call, a progress bar, Stop, and readable errors.

The page's handlers and the HTTP API both render through `Backend.render`.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import gradio as gr
import torch

from .errors import FineFaceError, GPUMemoryError
from .session import OutputFolder, Session
from .settings import GenerationSettings
from .studio import Studio, StudioResult
from .zero_gpu import on_gpu

log = logging.getLogger(__name__)

FACE_MODELS_LOADING = ("The face models are still loading (on first use that includes a download of several GB; "
                       "the status shows under the photos). Text-only images render meanwhile; try the face "
                       "again in a minute.")


class Stopped(Exception):
    """Raised from the step callback when the user pressed Stop."""


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


@dataclass
class Backend:
    """What every handler renders with: the models, the result files, and the GPU-slot call."""

    studio: Studio
    outputs: OutputFolder = field(default_factory=OutputFolder)
    # generate_readably, wrapped for ZeroGPU (zero_gpu.on_gpu) once, when the app is built.
    generate: Callable[..., StudioResult] = field(default_factory=lambda: on_gpu(generate_readably))

    def render(self, settings: GenerationSettings, photos: Sequence[str], progress: Callable[..., Any],
               session: Session | None = None) -> StudioResult:
        """Generate with a progress bar; a Stop pressed during the run aborts it at the next denoising step.

        The face models never load inside the GPU slot: until they are ready, a request with photos
        starts their loading and is answered with a message, so other visitors' requests keep rendering.
        """
        with readable_errors():
            if photos and not all([self.studio.ready("faces"), self.studio.ready("identity")]):
                self.studio.start_loading("faces")
                self.studio.start_loading("identity")
                raise FineFaceError(FACE_MODELS_LOADING)
            return self.generate(self.studio, settings, list(photos), StepReporter(progress, session))
