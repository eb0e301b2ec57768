"""Settings back on the page: from a history image, a PNG saved by the app, or a sweep frame.

Each handler returns PAGE_VALUES (the order ui.py lays the controls out in) and then the extra
outputs its docstring names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ..aus import au_dict
from ..png_info import read_settings
from ..settings import GenerationSettings
from .handlers import PAGE_VALUES, download_update, shown_image
from .rendering import readable_errors
from .session import Session


def page_values(metadata: dict[str, Any]) -> list[Any]:
    """Stored settings as PAGE_VALUES, validated; a setting the image's pipeline did not use keeps its control."""
    with readable_errors():
        values = GenerationSettings.from_metadata(metadata).as_dict()
    by_name = {**values, **values["aus"][0]}
    return [gr.skip() if by_name[name] is None else by_name[name] for name in PAGE_VALUES]


def restore_from_history(state: Session, event: gr.SelectData) -> list[Any]:
    """A history image's settings back on the page: PAGE_VALUES, Keep seed on (so the next render
    reproduces it), no preset, its face photos, then the image, its download and its settings."""
    # By the clicked file, not its index: a render that ends meanwhile shifts every index by one.
    # The page shows Gradio's cached copy, which keeps the result's (unique) file name.
    clicked = Path(event.value["image"]["path"]).name
    result = next((result for result in state.history if result.path.name == clicked), None)
    if result is None:
        gr.Warning("That image is no longer in this session's history.")
        return [gr.skip()] * (len(PAGE_VALUES) + 6)
    state.shown = result
    return [*page_values(result.metadata), True, None, restored_photos(result.key[1]), shown_image(result.path),
            download_update(result), result.metadata]


def restored_photos(photos: tuple[str, ...]) -> Any:
    """The photos an image was made with, back in the photo box: without them the next render would
    silently use the text model."""
    if not all(Path(photo).exists() for photo in photos):
        gr.Warning("The face photos of that image are gone: add the face again to render it with that face.")
        return gr.skip()
    return list(photos) or None


def restore_from_png(path: str | None) -> list[Any]:
    """The settings stored in a PNG back on the page: PAGE_VALUES, Keep seed on, no preset."""
    unchanged = [gr.skip()] * (len(PAGE_VALUES) + 2)
    if not path:
        return unchanged
    try:
        with readable_errors():
            metadata = read_settings(path)
            values = page_values(metadata)
    except gr.Error as error:
        # A warning, not an error: an error would mark every control it restores as failed.
        gr.Warning(error.message)
        return unchanged
    if metadata.get("faces"):  # a PNG carries the settings, not the photos
        gr.Warning("That image was made with a face photo: add the face again, then press Generate.")
    else:
        gr.Info("Settings loaded from the PNG; press Generate to render them.")
    return [*values, True, None]


def restore_sweep_frame(state: Session, event: gr.SelectData) -> list[Any]:
    """A sweep frame's twelve AU values on the sliders, and no preset."""
    return [*au_dict(read_settings(state.sweep_files[event.index])["aus"][0]).values(), None]
