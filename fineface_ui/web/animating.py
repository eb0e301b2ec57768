"""The Animate tab's handlers: keyframes from the sliders, and a keyframed motion rendered chunk by chunk
into frames shown as they come, then an MP4, a GIF and a ZIP of the PNG frames."""

from __future__ import annotations

from typing import Any, Iterator

import gradio as gr

from ..animation import frame_chunks, render_frames, write_videos, zip_frames
from ..aus import AU_NAMES, check_number, format_aus
from ..errors import InvalidInputError
from ..keyframes import Keyframe, Motion, format_keyframes, parse_keyframes
from ..settings import GenerationSettings
from ..video import write_gif
from .handlers import own_photos, split, warn_about_cut_text
from .rendering import Backend, Stopped, create_settings, readable_errors
from .session import Session


def add_keyframe(keys: str, time: Any, **aus: float) -> str:
    """The keyframe text with the sliders' setting at `time` added (replacing a keyframe at that very time)."""
    with readable_errors("Adding the keyframe"):
        time = check_number("The keyframe's time", time)
        kept = [key for key in (parse_keyframes(keys) if keys.strip() else ()) if key.time != time]
        added = Keyframe(time, {name: aus[name] for name in AU_NAMES})
        # Read back from its text: the text box holds it, and reading checks the time and every value.
        return format_keyframes(parse_keyframes(format_keyframes(sorted([*kept, added], key=lambda key: key.time))))


def motion_request(backend: Backend, state: Session, photo_paths: list[str] | None, keys: str, seconds: Any,
                   fps: Any, easing: str, values: dict[str, Any]) -> tuple[Motion, GenerationSettings, list[str]]:
    """The tab's motion, the page's other settings (the sliders' AUs left out: the keyframes say every AU at
    every moment) and the tab's face photos, each checked before any work."""
    with readable_errors("Animating"):
        motion = Motion.create(keys, seconds, fps, easing)
    text, _, options = split(values)
    return motion, create_settings(text, None, **options), own_photos(backend, state, photo_paths)


def render_animation(backend: Backend, state: Session, photo_paths: list[str] | None, keys: str, seconds: Any,
                     fps: Any, easing: str, progress: gr.Progress = gr.Progress(track_tqdm=True),
                     **values: Any) -> Iterator[Any]:
    """The motion's frames in the gallery as each chunk is done; then the video and the downloads."""
    motion, settings, photos = motion_request(backend, state, photo_paths, keys, seconds, fps, easing, values)
    backend.outputs.discard(state.animation_files)
    state.animation_files = []
    stops_before = state.stops
    total = motion.frame_count

    def chunk(frames: GenerationSettings) -> Any:
        if state.stops != stops_before:  # pressed between two chunks
            raise Stopped
        done = len(state.animation_files)
        output = backend.render(frames, photos, progress, state,
                                desc=f"Frames {done + 1}-{done + len(frames.aus)} of {total}").output
        if not done:
            warn_about_cut_text(output.metadata)
        return output

    def save(image: Any, metadata: dict) -> Any:
        path = backend.outputs.png(image, metadata, state)
        state.animation_files.append(path)  # at once: a Stop keeps the frames made, and deletes them later
        return path

    try:
        for frames in render_frames(settings, motion, chunk, save):
            yield shown_frames(frames, motion), None, None  # the last motion's video and files are gone
    except Stopped:
        gr.Info("Stopped: the frames made so far are shown; no video was made.")
        return
    progress(None, desc="Writing the MP4 and the GIF")
    folder = backend.outputs.new_folder(state)  # the files' names are the downloads' names
    name = folder / f"fineface-animation-seed{settings.seed}"
    with readable_errors("Writing the video"):
        video, gif = write_videos(frames, name.with_suffix(".mp4"), name.with_suffix(".gif"), motion.fps)
        archive = zip_frames(frames, name.with_name(f"{name.name}-frames.zip"))
    state.animation_files = [*frames, video, gif, archive]
    yield shown_frames(frames, motion), str(video), [str(video), str(gif), str(archive)]


def preview_motion(backend: Backend, state: Session, photo_paths: list[str] | None, keys: str, seconds: Any,
                   fps: Any, easing: str, progress: gr.Progress = gr.Progress(), **values: Any) -> Any:
    """A quick look at the motion: every frame as a preview (8 steps, TAESD), played as a GIF, in a
    fraction of the render's time; nothing of it enters the downloads."""
    motion, settings, photos = motion_request(backend, state, photo_paths, keys, seconds, fps, easing, values)
    stops_before, pictures = state.stops, []
    for start, chunk in frame_chunks(settings, motion):
        if state.stops != stops_before:
            gr.Info("Stopped.")
            return gr.skip()
        progress((start, motion.frame_count), desc="Quick look: frames")
        pictures += backend.preview(chunk, photos)
    backend.outputs.discard([state.motion_preview] if state.motion_preview else [])
    state.motion_preview = write_gif(pictures, backend.outputs.new_folder(state) / "quick-look.gif", motion.fps)
    return str(state.motion_preview)


def shown_frames(frames: list, motion: Motion) -> dict[str, Any]:
    times = motion.times()
    return gr.update(value=[(str(path), f"{times[index]:.2f} s") for index, path in enumerate(frames)],
                     label=f"Frames: {len(frames)} of {motion.frame_count}")


def keyframes_of(text: str) -> str:
    """The keyframes as the page lists them, one a line, or why they cannot be read."""
    try:
        return "\n".join(f"- {key.time:g} s: {format_aus(key.aus)}" for key in parse_keyframes(text))
    except InvalidInputError as error:
        return f"⚠️ {error}"
