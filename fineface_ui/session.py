"""What the web app keeps per browser tab and on disk: results, their files, and Stop presses.

No Gradio here: the page, the HTTP API and the tests use the same objects.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from PIL import Image

from .png_info import save_png

HISTORY_SIZE = 24


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
