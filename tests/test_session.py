"""What the server keeps per tab and on disk: bounded API files, and face photos only as long as the tab."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from fineface_ui.settings import GenerationSettings
from fineface_ui.web.session import SESSION_IDLE_S, OutputFolder, Result, Session, modified


def metadata():
    return GenerationSettings.create("a face").as_dict()


def upload(folder, name="face.png"):
    """A photo where Gradio's upload would put it: a folder of its own in the cache."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    Image.new("RGB", (8, 8), (200, 180, 160)).save(path)
    return str(path)


def test_api_files_beyond_the_limit_are_deleted_oldest_first_and_session_files_are_kept():
    outputs = OutputFolder(files_per_prefix=3)
    image = Image.new("RGB", (8, 8))
    tab_file = outputs.png(image, metadata(), Session())
    api_files = [outputs.png(image, metadata(), "api-") for _ in range(4)]
    api_files.append(outputs.gif([image, image], "api-"))
    assert [path.exists() for path in api_files] == [False, False, True, True, True]
    assert tab_file.exists()


def test_an_uploaded_photo_is_copied_into_the_session_folder_and_the_upload_is_gone(tmp_path):
    outputs, session = OutputFolder(), Session()
    original = upload(tmp_path / "gradio-cache" / "abc123", "beach.jpg")
    [copy] = outputs.take_photos(session, [original])
    assert copy.is_file() and copy.name == "beach.jpg" and copy.is_relative_to(outputs.root)
    assert not (tmp_path / "gradio-cache" / "abc123" / "beach.jpg").exists()
    # The page sends the upload's path again with the next render: the same copy answers.
    assert outputs.take_photos(session, [original]) == [copy] and copy in session.files()


def test_two_sessions_keep_separate_folders_and_a_removed_photo_is_deleted(tmp_path):
    outputs, first, second = OutputFolder(), Session(), Session()
    [mine] = outputs.take_photos(first, [upload(tmp_path / "a")])
    [theirs] = outputs.take_photos(second, [upload(tmp_path / "b")])
    assert first.folder != second.folder and mine.is_relative_to(first.folder)
    assert outputs.take_photos(first, []) == [] and not mine.exists() and theirs.exists()


def test_closing_the_session_deletes_its_photos_results_and_folder(tmp_path):
    outputs, session = OutputFolder(), Session()
    [copy] = outputs.take_photos(session, [upload(tmp_path / "cache")])
    session.sweep_files = [outputs.png(Image.new("RGB", (8, 8)), metadata(), session)]
    outputs.close(session)
    assert not copy.exists() and not session.sweep_files[0].exists() and not session.folder.exists()


def test_discarding_the_session_files_deletes_its_photos_too(tmp_path):
    outputs, session = OutputFolder(), Session()
    [copy] = outputs.take_photos(session, [upload(tmp_path / "cache")])
    outputs.discard(session.files())
    assert not copy.exists()


def test_the_folders_of_sessions_untouched_for_an_hour_are_swept_when_another_session_works(tmp_path):
    # Gradio drops sessions beyond its capacity without calling delete_callback: their files must go anyway.
    outputs, forgotten, idle, active = OutputFolder(), Session(), Session(), Session()
    [photo] = outputs.take_photos(forgotten, [upload(tmp_path / "cache")])
    result = outputs.png(Image.new("RGB", (8, 8)), metadata(), forgotten)
    recent = outputs.png(Image.new("RGB", (8, 8)), metadata(), idle)
    long_ago, a_while_ago = time.time() - SESSION_IDLE_S - 60, time.time() - SESSION_IDLE_S + 600
    os.utime(forgotten.folder, (long_ago, long_ago))
    os.utime(idle.folder, (a_while_ago, a_while_ago))
    outputs.png(Image.new("RGB", (8, 8)), metadata(), active)
    assert not forgotten.folder.exists() and not photo.exists() and not result.exists()
    assert recent.exists()


def test_a_session_swept_while_idle_starts_again_empty_in_a_new_folder(tmp_path):
    outputs, session = OutputFolder(), Session()
    outputs.take_photos(session, [upload(tmp_path / "cache")])
    first = outputs.png(Image.new("RGB", (8, 8)), metadata(), session)
    session.history = [Result(first, metadata())]
    shutil.rmtree(session.folder)  # swept
    again = outputs.png(Image.new("RGB", (8, 8)), metadata(), session)
    assert again.exists() and again.parent == session.folder and not first.exists()
    # Nothing points at the swept files: the page would offer downloads and photos that are gone.
    assert session.history == [] and session.photos == {} and session.files() == []


def test_each_request_of_a_tab_marks_its_folder_as_in_use(tmp_path):
    outputs, session = OutputFolder(), Session()
    outputs.png(Image.new("RGB", (8, 8)), metadata(), session)
    long_ago = time.time() - SESSION_IDLE_S - 60
    os.utime(session.folder, (long_ago, long_ago))
    outputs.take_photos(session, [])  # what each render, preview and sweep of the tab starts with
    assert time.time() - session.folder.stat().st_mtime < 60


def test_a_photo_two_api_calls_share_stays_until_the_last_ends_and_a_tab_only_copies_it(tmp_path):
    # Gradio stores identical uploads as one file, named by the content's hash.
    outputs, tab = OutputFolder(), Session()
    shared = Path(upload(tmp_path / "cache" / "sha"))
    with outputs.holding([str(shared)]):
        with outputs.holding([str(shared)]):
            pass
        assert shared.is_file()  # the other call still renders from it
        [copy] = outputs.take_photos(tab, [shared])
        assert shared.is_file() and copy.is_file()
    assert not shared.exists() and not shared.parent.exists() and copy.is_file()


def test_a_file_deleted_by_another_thread_counts_as_just_written():
    assert modified(Path(tempfile.gettempdir()) / "fineface-deleted-meanwhile") == math.inf
