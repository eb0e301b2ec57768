"""Animations and upscales, measured: frames per second of a keyframed motion (rendered in chunks and
written as PNG frames, MP4 and GIF, as the page and the command line do), of its quick look, and the time
of one x2 upscale.
Measures, never asserts.

On the CPU with the tiny models (`python -m fineface_ui.bench --random-weights`, live.py), and on CUDA
in the full-size GPU table (gpu_table.py).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from ..animation import frame_chunks, frame_name, render_frames, write_videos
from ..keyframes import Motion
from ..png_info import read_settings, save_png
from ..settings import GenerationSettings, Upscale
from .table import Row

PROMPT = "a close-up photo of a woman in a park"
KEYS = "0:neutral; 1:AU1=3,AU2=3,AU5=3,AU26=3; 2:AU6=3,AU12=4"  # surprise, then a smile


def motion_rows(pipe: Any, size: int, steps: int, sync: Callable[[], None] = lambda: None) -> list[Row]:
    """A 2 s motion at 12 fps (25 frames): rendering, then encoding; and an x2 upscale of its last frame."""
    motion = Motion.create(KEYS, fps=12)
    settings = GenerationSettings.create(PROMPT, None, num_inference_steps=steps, width=size, height=size)
    with tempfile.TemporaryDirectory(prefix="fineface-bench-motion-") as folder:
        names = (Path(folder) / frame_name(index) for index in range(motion.frame_count))
        sync()
        start = time.perf_counter()
        *_, frames = render_frames(settings, motion, pipe.generate,
                                   lambda image, metadata: save_png(image, next(names), metadata))
        sync()
        rendered = time.perf_counter() - start
        start = time.perf_counter()
        write_videos(frames, Path(folder) / "motion.mp4", Path(folder) / "motion.gif", motion.fps)
        encoded = time.perf_counter() - start
        sync()
        start = time.perf_counter()
        for _, chunk in frame_chunks(settings, motion):  # the Animate tab's Quick look
            pipe.generate_preview(chunk)
        sync()
        quick = time.perf_counter() - start
        last = GenerationSettings.from_metadata(read_settings(frames[-1]))
        upscale = Upscale()
        with Image.open(frames[-1]) as image:
            picture = image.convert("RGB")
        pipe.upscale(picture, last, upscale=upscale)  # warm-up: the first call at a new size pays for it
        sync()
        start = time.perf_counter()
        pipe.upscale(picture, last, upscale=upscale)
        sync()
        upscaled = time.perf_counter() - start
    frames_note = f"{motion.frame_count} frames, {steps} steps, {size}x{size}"
    side = upscale.size(size, size)[0]
    return [
        ("animation: frames rendered per second (each written as a PNG)", motion.frame_count / rendered, frames_note),
        ("animation: writing the MP4 and the GIF, s", encoded, f"{motion.frame_count} frames"),
        ("animation: whole, frames per second", motion.frame_count / (rendered + encoded), frames_note),
        ("animation: quick look (8 steps, TAESD), frames per second", motion.frame_count / quick,
         f"{motion.frame_count} frames, {size}x{size}"),
        (f"upscale x2 to {side}x{side} at strength {upscale.strength:g}, s", upscaled,
         f"{upscale.steps(steps)} of {steps} steps at the larger size"),
    ]
