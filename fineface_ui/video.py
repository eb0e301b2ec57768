"""Animation frames written as video: an H.264 MP4 that browsers and QuickTime play, and a looping GIF.

Frames may come from an iterator (PNG files opened one at a time), so a long motion is never all in memory.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
from PIL import Image

# libx264's constant rate factor: 18 looks lossless to most eyes (ffmpeg's default, 23, shows blocks in hair).
MP4_CRF = 18


def _first_and_rest(frames: Iterable[Image.Image]) -> tuple[Image.Image, Iterator[Image.Image]]:
    """The first frame (its size sets the video's) and the others, still unread."""
    rest = iter(frames)
    first = next(rest, None)
    if first is None:
        raise ValueError("No frames to write: a video needs at least one.")
    return first, rest


def write_mp4(frames: Iterable[Image.Image], path: str | Path, fps: int) -> Path:
    """H.264 in yuv420p (what browsers and QuickTime decode), frame i shown at i / fps for 1 / fps seconds."""
    first, rest = _first_and_rest(frames)
    width, height = first.size
    # yuv420p keeps colour at half the resolution each way, so libx264 refuses odd sides. Our sizes are
    # multiples of 64; padding or cropping here would hide a caller's mistake, so refuse it readably.
    if width % 2 or height % 2:
        raise ValueError(f"An MP4 frame needs an even width and height; got {width}x{height}.")
    time_base = Fraction(1, fps)
    # +faststart puts the index before the frames, so a browser starts playing before the whole file has arrived.
    with av.open(str(path), mode="w", format="mp4", container_options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": str(MP4_CRF)})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index, image in enumerate(itertools.chain([first], rest)):
            if image.size != first.size:  # the encoder would silently rescale it
                raise ValueError(f"Frame {index} is {image.width}x{image.height}; the first was {width}x{height}.")
            frame = av.VideoFrame.from_image(image.convert("RGB"))
            frame.pts, frame.time_base = index, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())  # flush the frames the encoder still holds
    return Path(path)


def write_gif(frames: Iterable[Image.Image], path: str | Path, fps: int) -> Path:
    """A GIF that loops forever, playing the frames in order, each for round(1000 / fps) ms.

    GIF counts time in hundredths of a second, so at 12 fps (83 ms) each frame shows 80 ms. Pillow merges
    identical consecutive frames into one longer frame, and holds every frame, reduced to one byte a pixel,
    until the file is written: 300 frames of 512x512 take 79 MB.
    """
    first, rest = _first_and_rest(frames)
    first, rest = _palette(first), map(_palette, rest)
    first.save(path, format="GIF", save_all=True, append_images=rest, duration=round(1000 / fps), loop=0)
    return Path(path)


def _palette(image: Image.Image) -> Image.Image:
    """The frame in 256 colours by the fast octree (dithered). Pillow's default for RGB frames, median cut,
    took 0.3 s a 512x512 frame on the CI machine, more than rendering the frame on a GPU; this takes 4 ms."""
    return image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
