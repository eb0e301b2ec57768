"""Reading expressions, timed: one 512x512 image read (detection + alignment + network), and whether a
result's measurement, which the page runs right after the image, slows the render that follows."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from PIL import Image, ImageDraw

from ..faces.au_reader import AUReader
from ..settings import GenerationSettings
from ..standins.full_size_reader import write_full_size_reader
from ..standins.tiny_face_models import write_model_pack
from ..studio import Studio
from .table import median_ms


def drawn_face(size: int = 512) -> Image.Image:
    """A face to the tiny detector: a bright rectangle, shaded inside."""
    photo = Image.new("RGB", (size, size), (30, 30, 30))
    ImageDraw.Draw(photo).rectangle((150, 120, 360, 400), fill=(235, 215, 195))
    ImageDraw.Draw(photo).rectangle((150, 120, 250, 400), fill=(250, 200, 230))
    return photo


def no_sync() -> None:
    """On the CPU a call has finished when it returns: nothing to wait for."""


def reading_latency(model: Path | None, face_pack: Path | None, repeats: int) -> tuple[str, list[tuple[str, float]]]:
    """Cold and warm reads of one 512x512 image. Without the real files: a ResNet-18 of LibreFace's size
    with random weights (the network's real cost) after the tiny stand-in detector (not buffalo_l's cost)."""
    with tempfile.TemporaryDirectory(prefix="fineface-bench-reader-") as folder:
        scratch = Path(folder)
        if face_pack is None:
            write_model_pack(scratch / "faces")
        label = "LibreFace" if model else "ResNet-18 of LibreFace's size, random weights"
        label += ", tiny stand-in detector" if face_pack is None else ", buffalo_l detector"
        reader = AUReader(model=model or write_full_size_reader(scratch / "resnet18.onnx"),
                          face_pack=face_pack or scratch / "faces")
        photo = drawn_face()
        start = time.perf_counter()
        reader.read([photo])
        cold = (time.perf_counter() - start) * 1000
        warm = median_ms(lambda: reader.read([photo]), repeats, no_sync)
    return f"{label}, providers {reader.providers[0]}", [
        ("read one 512x512 image, cold (load + detect + align + network), ms", cold),
        ("read one 512x512 image, warm, ms", warm)]


def render_beside_reading(repeats: int) -> list[tuple[str, float]]:
    """The tiny models' render alone, and started as the previous result's measurement starts (the page
    measures each result in a slot of its own once the image is shown), with the full-size reader."""
    with tempfile.TemporaryDirectory(prefix="fineface-bench-beside-") as name:
        folder = Path(name)
        studio = Studio.with_random_weights(folder)
        reader = AUReader(model=write_full_size_reader(folder / "resnet18.onnx"), face_pack=folder / "insightface")
        settings = GenerationSettings.create("a face", {"AU12": 3}, num_inference_steps=4, width=256, height=256)
        studio.generate(settings)  # loads and warms
        reader.read([drawn_face()])
        alone = median_ms(lambda: studio.generate(settings), repeats, no_sync)

        def render_while_measuring() -> None:
            measuring = threading.Thread(target=reader.read, args=([drawn_face()],))
            measuring.start()
            studio.generate(settings)
            measuring.join()

        beside = median_ms(render_while_measuring, repeats, no_sync)
    return [("render (tiny models, 4 steps, 256x256) alone, ms", alone),
            ("the same render started with a measurement of the last result, ms", beside)]
