"""Keyframed animations: frames with one seed and starting noise, in chunks, as MP4, GIF and PNG frames."""

from __future__ import annotations

import zipfile
from pathlib import Path

import av
import gradio as gr
import numpy as np
import pytest
from PIL import Image

from fineface_ui.animation import FRAMES_PER_CHUNK, render_frames
from fineface_ui.cli import main
from fineface_ui.keyframes import Motion
from fineface_ui.png_info import read_settings, save_png
from fineface_ui.settings import SPEC, GenerationSettings
from fineface_ui.web import animating, readouts
from fineface_ui.web.handlers import PAGE_VALUES
from fineface_ui.web.rendering import Backend
from fineface_ui.web.session import Session


def no_progress(*args, **kwargs):
    pass


def decoded(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_every_frame_has_the_seed_and_starting_noise_of_a_still_with_its_aus(sd21_pipe, fast, pixels):
    output = sd21_pipe.animate("a face", "0:neutral; 1:AU12=4", seconds=1, fps=4, seed=5, **fast)
    assert [aus["AU12"] for aus in output.metadata["aus"]] == [0, 1, 2, 3, 4]
    assert output.metadata["animation"]["frames"] == 5
    still = sd21_pipe("a face", "AU12=2", seed=5, **fast).images[0]
    # Only float summation order differs between a batch of five and one image alone.
    assert np.abs(pixels(output.images[2]) - pixels(still)).max() <= 2
    other_seed = sd21_pipe("a face", "AU12=2", seed=6, **fast).images[0]
    assert np.abs(pixels(output.images[2]) - pixels(other_seed)).max() > 2


def test_frames_render_in_chunks_and_each_png_knows_its_place_in_the_motion(sd21_pipe, fast, tmp_path):
    motion = Motion.create("0:neutral; 1:AU6=2,AU12=4", fps=2 * FRAMES_PER_CHUNK)  # one frame past two chunks
    chunks = []

    def generate(settings):
        chunks.append(len(settings.aus))
        return sd21_pipe.generate(settings)

    paths = iter(tmp_path / f"{index}.png" for index in range(motion.frame_count))
    yielded = list(render_frames(GenerationSettings.create("a face", None, **fast), motion, generate,
                                 lambda image, metadata: save_png(image, next(paths), metadata)))
    assert chunks == [FRAMES_PER_CHUNK, FRAMES_PER_CHUNK, 1]
    assert [len(frames) for frames in yielded] == [8, 16, 17]
    last = read_settings(yielded[-1][-1])
    assert last["animation"]["frame"] == 16 and last["animation"]["time"] == 1.0
    assert last["aus"] == [{**last["aus"][0], "AU6": 2.0, "AU12": 4.0}]


def test_the_command_writes_an_mp4_a_gif_and_png_frames_of_the_motion(tmp_path, capsys):
    out = tmp_path / "smile.mp4"
    assert main(["animate", "--random-weights", "--keys", "0:neutral; 1:AU12=4", "--seconds", "1", "--fps", "8",
                 "--steps", "2", "--width", "256", "--height", "256", "--out", str(out)]) == 0
    frames = decoded(out)
    assert len(frames) == 9 and frames[0].shape == (256, 256, 3)
    with Image.open(tmp_path / "smile.gif") as gif:
        assert gif.n_frames == 9
    pngs = sorted((tmp_path / "smile-frames").glob("*.png"))
    assert len(pngs) == 9 and read_settings(pngs[-1])["aus"][0]["AU12"] == 4
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(("arguments", "message"), [
    (["--keys", "1:AU12=4; 0:neutral"], "increas"),
    (["--keys", "0:AU99=1; 1:neutral"], "Unknown Action Unit 'AU99'"),
    (["--keys", "0:neutral; 1:AU12=4", "--fps", "200"], "Frames per second must be a whole number from 1 to 30"),
    (["--keys", "0:neutral; 1:AU12=4", "--out", "smile.gif"], "end it in .mp4"),
])
def test_bad_keyframes_are_refused_with_a_message_before_any_model_loads(arguments, message, tmp_path, capsys,
                                                                         monkeypatch, no_model_loads):
    monkeypatch.chdir(tmp_path)
    assert main(["animate", "--random-weights", *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_adding_the_sliders_as_a_keyframe_keeps_the_order_and_replaces_the_same_time():
    sliders = {"AU1": 0.0, "AU2": 0.0, "AU4": 0.0, "AU5": 0.0, "AU6": 2.0, "AU9": 0.0, "AU12": 3.0, "AU15": 0.0,
               "AU17": 0.0, "AU20": 0.0, "AU25": 0.0, "AU26": 0.0}
    assert animating.add_keyframe("0:neutral; 2:AU4=3", 1, **sliders) == "0:neutral; 1:AU6=2, AU12=3; 2:AU4=3"
    assert animating.add_keyframe("0:neutral; 2:AU4=3", 2, **sliders) == "0:neutral; 2:AU6=2, AU12=3"
    assert animating.add_keyframe("", 0, **sliders) == "0:AU6=2, AU12=3"
    with pytest.raises(gr.Error, match="increas"):
        animating.add_keyframe("2:neutral; 1:AU4=3", 3, **sliders)


def page_values(fast):
    values = {name: setting.default for name, setting in SPEC.items()}
    values.update({name: 0.0 for name in PAGE_VALUES[1 + len(SPEC):]}, prompt="a face", **fast)
    return values


def test_the_tab_shows_the_frames_as_chunks_finish_then_the_video_and_downloads(random_studio, fast):
    backend, state = Backend(random_studio), Session()
    steps = list(animating.render_animation(backend, state, None, "0:neutral; 1:AU12=4", 1, 9, "ease",
                                            no_progress, **page_values(fast)))
    assert [len(gallery["value"]) for gallery, *_ in steps] == [8, 10, 10]
    _, video, downloads = steps[-1]
    assert len(decoded(video)) == 10 and [name[-4:] for name in downloads] == [".mp4", ".gif", ".zip"]
    with zipfile.ZipFile(downloads[2]) as archive:
        assert archive.namelist() == [f"frame-{index:04d}.png" for index in range(10)]
    curves = readouts.measure_animation(backend, state, True)["value"]
    assert set(curves["series"]) == {"AU12 asked for", "AU12 read from the image"}
    assert sorted(curves[curves["series"] == "AU12 asked for"]["intensity"])[-1] == 4


def test_a_stop_between_chunks_keeps_the_frames_made_and_makes_no_video(random_studio, fast):
    backend, state = Backend(random_studio), Session()
    steps = animating.render_animation(backend, state, None, "0:neutral; 1:AU12=4", 1, 9, "linear", no_progress,
                                       **page_values(fast))
    first, *_ = next(steps)
    state.stops += 1
    assert list(steps) == []
    assert len(first["value"]) == 8 and len(state.animation_files) == 8
    assert all(path.suffix == ".png" and path.is_file() for path in state.animation_files)


def test_the_tab_refuses_bad_keyframes_before_any_work(random_studio, fast):
    with pytest.raises(gr.Error, match="Unknown Action Unit"):
        next(animating.render_animation(Backend(random_studio), Session(), None, "0:AU3=1", 1, 8, "linear",
                                        no_progress, **page_values(fast)))
    assert animating.keyframes_of("0:neutral; 1:AU12=4") == "- 0 s: neutral\n- 1 s: AU12=4"
    assert animating.keyframes_of("0:neutral; x:AU12=4").startswith("⚠️")


def test_a_quick_look_plays_every_frame_as_a_preview_in_a_gif(random_studio, fast):
    backend, state = Backend(random_studio), Session()
    gif = animating.preview_motion(backend, state, None, "0:neutral; 1:AU12=4", 1, 9, "linear", no_progress,
                                   **page_values(fast))
    with Image.open(gif) as animation:
        assert animation.n_frames == 10 and animation.info["duration"] == 110  # GIF counts hundredths
    again = animating.preview_motion(backend, state, None, "0:neutral; 1:AU12=4", 1, 9, "linear", no_progress,
                                     **page_values(fast))
    assert not Path(gif).exists() and Path(again).exists()  # the older quick look is gone with its successor
