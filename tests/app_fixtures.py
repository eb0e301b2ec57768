"""The app served on a free local port, for the API and browser tests."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw

from fineface_ui.studio import Studio
from fineface_ui.web.server import create_app, launch


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_app(studio: Studio) -> Iterator[str]:
    """Serve the app in this process and yield its URL; closed on exit."""
    demo = create_app(studio)
    launch(demo, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


def blank_photo(path: Path) -> Path:
    """A dark, empty photo. (Not white: the tiny test detector takes any bright square for a face.)"""
    Image.fromarray(np.full((480, 640, 3), 30, np.uint8)).save(path)
    return path


def face_picture(path: Path, size=(480, 400), boxes=((120, 100, 300, 320),)) -> Path:
    """A face to the stand-in detector (a bright rectangle, shaded inside) per box, on a dark photo."""
    picture = Image.new("RGB", size, (30, 30, 30))
    for box in boxes:
        ImageDraw.Draw(picture).rectangle(box, fill=(235, 215, 195))
        # Shading inside the face (still bright to the detector) gives the reader something to read.
        ImageDraw.Draw(picture).rectangle((box[0], box[1], (box[0] + box[2]) // 2, box[3]), fill=(250, 200, 230))
    picture.save(path)
    return path
