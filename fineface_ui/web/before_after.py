"""The Before / after view: the newest image beside its all-AUs-0 twin.

The twin doubles the work of a render, so it is rendered only while the view is shown (in the same
batch as the image) or when the view is opened, and reused while only the AUs change.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import gradio as gr

from ..aus import au_dict
from ..engine.pipeline import FineFaceOutput
from ..settings import GenerationSettings
from .rendering import Backend, Stopped
from .session import Result, Session

NEUTRAL = (au_dict(None),)


def twin_key(key: tuple) -> tuple:
    """The image key (handlers.image_key) of the all-AUs-0 twin of the image with `key`."""
    settings, photos = key
    return replace(settings, aus=NEUTRAL), photos


def upscaled(result: Result) -> bool:
    """Whether a result is an upscale: its key adds the upscale to its source's (handlers.upscale_result)."""
    return len(result.key) > 2


def twin_at_hand(state: Session) -> bool:
    return bool(state.history) and not upscaled(state.history[0]) and state.neutral is not None and \
        state.neutral.key == twin_key(state.history[0].key)


def shown_pair(state: Session) -> tuple[str, str] | None:
    """The view's value: (twin, newest image), or None (an empty view) while the twin is not rendered."""
    return (str(state.neutral.path), str(state.history[0].path)) if twin_at_hand(state) else None


def rendered(backend: Backend, settings: GenerationSettings, photos: Sequence[str], progress: Any,
             state: Session) -> FineFaceOutput | None:
    """The output of one render, or None when the user pressed Stop during it."""
    try:
        return backend.render(settings, photos, progress, state).output
    except Stopped:
        gr.Info("Stopped.")
        return None


def save_result(backend: Backend, state: Session, output: FineFaceOutput, index: int, key: Any) -> Result:
    metadata = output.metadata_for(index)
    return Result(backend.outputs.png(output.images[index], metadata, state), metadata, key)


def show_before_after(backend: Backend, state: Session,
                      progress: gr.Progress = gr.Progress(track_tqdm=True)) -> Any:
    """The view's value for the newest image, rendering its twin first if it is not at hand."""
    if not state.history or twin_at_hand(state):
        return shown_pair(state) if state.history else gr.skip()
    if upscaled(state.history[0]):  # a twin at the first size would show the upscale's detail as the AUs' doing
        gr.Info("An upscaled image has no all-AUs-0 twin: the view compares images rendered at one size.")
        return None
    settings, photos = key = twin_key(state.history[0].key)
    output = rendered(backend, settings, photos, progress, state)
    if output is None:
        return gr.skip()
    shown_before = set(state.files())
    state.neutral = save_result(backend, state, output, 0, key)
    backend.outputs.discard(shown_before - set(state.files()))
    return shown_pair(state)
