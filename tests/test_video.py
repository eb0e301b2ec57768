"""Frames written as MP4 and GIF, read back as a player would."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from fineface_ui.video import write_gif, write_mp4


def smooth_frame(index: int, width: int = 128, height: int = 64) -> Image.Image:
    """A gradient that moves with `index`: every frame differs, and nothing is too sharp for H.264 to keep."""
    rows, columns = np.mgrid[0:height, 0:width]
    pixels = np.stack([(columns * 2 + index * 8) % 256, rows * 4 % 256, np.full_like(rows, 128)], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8))


def frames(count: int, **size: int):
    """A generator, as the app passes PNG files opened one at a time."""
    return (smooth_frame(index, **size) for index in range(count))


def test_mp4_is_h264_with_one_frame_each_1_over_fps_seconds(tmp_path):
    path = write_mp4(frames(9), tmp_path / "motion.mp4", fps=8)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == 8
        decoded = list(container.decode(stream))
    assert len(decoded) == 9
    assert [frame.time for frame in decoded] == [index / 8 for index in range(9)]
    assert {(frame.width, frame.height, frame.format.name) for frame in decoded} == {(128, 64, "yuv420p")}
    assert float(stream.duration * stream.time_base) == pytest.approx(9 / 8)
    first = decoded[0].to_ndarray(format="rgb24").astype(int)
    assert np.abs(first - np.asarray(smooth_frame(0), dtype=int)).mean() < 8


def test_mp4_index_comes_first_so_browsers_start_playing_early(tmp_path):
    data = write_mp4(frames(2), tmp_path / "motion.mp4", fps=12).read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")


def test_odd_sizes_and_a_frame_of_another_size_are_refused_readably(tmp_path):
    with pytest.raises(ValueError, match="even width and height; got 65x64"):
        write_mp4(frames(2, width=65), tmp_path / "odd.mp4", fps=12)
    mixed = iter([smooth_frame(0), smooth_frame(1, width=64)])
    with pytest.raises(ValueError, match="Frame 1 is 64x64; the first was 128x64"):
        write_mp4(mixed, tmp_path / "mixed.mp4", fps=12)


@pytest.mark.parametrize("write", [write_mp4, write_gif])
def test_no_frames_is_a_readable_error(tmp_path, write):
    with pytest.raises(ValueError, match="No frames to write"):
        write(iter([]), tmp_path / "empty", fps=12)


def test_gif_loops_forever_through_every_frame_in_order(tmp_path):
    reds = [index * 25 for index in range(9)]  # plain colours come back exactly from the GIF's palette
    path = write_gif((Image.new("RGB", (128, 64), (red, 0, 0)) for red in reds), tmp_path / "motion.gif", fps=10)
    with Image.open(path) as gif:
        assert gif.info["loop"] == 0
        assert gif.n_frames == 9 and gif.size == (128, 64)
        played = []
        for index in range(gif.n_frames):
            gif.seek(index)
            played.append((gif.convert("RGB").getpixel((5, 5)), gif.info["duration"]))
    assert played == [((red, 0, 0), 100) for red in reds]  # forward only, no ping-pong


def test_gif_frame_duration_is_a_whole_number_of_hundredths_near_1000_over_fps(tmp_path):
    with Image.open(write_gif(frames(2), tmp_path / "motion.gif", fps=12)) as gif:
        assert gif.info["duration"] == 80  # round(1000 / 12) = 83 ms, which GIF stores as 8 hundredths
