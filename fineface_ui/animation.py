"""Keyframed animations rendered: the frames in chunks (so memory stays bounded however long the motion),
each written as a PNG with its settings, then the MP4 and the GIF made from those files.

The page, the HTTP API and the command line share this; each passes its own way of rendering a chunk
(with or without progress bar and Stop) and of naming a frame's file.
"""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from PIL import Image

from .engine.denoising import IMAGES_PER_BATCH
from .engine.pipeline import FineFaceOutput
from .keyframes import Motion
from .settings import GenerationSettings
from .video import write_gif, write_mp4

# Frames per pipeline call: one denoising loop's batch, so each chunk's frames show as soon as they exist.
FRAMES_PER_CHUNK = IMAGES_PER_BATCH


def frame_chunks(settings: GenerationSettings, motion: Motion) -> Iterator[tuple[int, GenerationSettings]]:
    """(the chunk's first frame, its settings): the motion's AU settings, a chunk at a time, each frame
    with the prompt, seed and so the starting noise of `settings`, which keeps the face steady."""
    frames = motion.frame_aus()
    for start in range(0, len(frames), FRAMES_PER_CHUNK):
        yield start, replace(settings, aus=tuple(frames[start:start + FRAMES_PER_CHUNK]))


def render_frames(settings: GenerationSettings, motion: Motion,
                  generate: Callable[[GenerationSettings], FineFaceOutput],
                  save: Callable[[Image.Image, dict[str, Any]], Path]) -> Iterator[list[Path]]:
    """Render the motion chunk by chunk with `generate`; `save` writes each frame as a PNG with its settings
    and its place in the motion (the metadata given). After each chunk, yield the frames written so far."""
    times, written = motion.times(), []
    for start, chunk in frame_chunks(settings, motion):
        output = generate(chunk)
        for offset, image in enumerate(output.images):
            index = start + offset
            metadata = {**output.metadata_for(offset),
                        "animation": {**motion.as_dict(), "frame": index, "time": round(times[index], 4)}}
            written.append(save(image, metadata))
        yield list(written)


def opened(frames: Sequence[Path]) -> Iterator[Image.Image]:
    """The frames' pictures, one open at a time."""
    for path in frames:
        with Image.open(path) as image:
            yield image.convert("RGB")


def write_videos(frames: Sequence[Path], video: Path, gif: Path, fps: int) -> tuple[Path, Path]:
    """The PNG frames as an MP4 at `video` and a GIF at `gif`."""
    return write_mp4(opened(frames), video, fps), write_gif(opened(frames), gif, fps)


def zip_frames(frames: Sequence[Path], archive: Path) -> Path:
    """The PNG frames in one ZIP, named by their order (frame-0000.png, ...): one download instead of hundreds.
    Stored, not compressed: PNGs do not shrink further."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
        for index, path in enumerate(frames):
            bundle.write(path, frame_name(index))
    return archive


def frame_name(index: int) -> str:
    return f"frame-{index:04d}.png"
