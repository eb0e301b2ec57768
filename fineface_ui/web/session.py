"""What the web app keeps per browser tab and on disk: results, their files, the photo being edited, and Stop
presses.

No Gradio here: the page, the HTTP API and the tests use the same objects.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from PIL import Image

from ..edit_settings import EditSettings
from ..faces.edit_inputs import EditPhoto
from ..png_info import save_png
from ..settings import MAX_IMAGES_PER_CALL

HISTORY_SIZE = 24
# A session's folder untouched this long is deleted: Gradio forgets the sessions beyond its capacity
# without a word, so their files would otherwise stay until the app exits. An hour, like the cached
# copies Gradio itself serves to the page (ui.py's delete_cache).
SESSION_IDLE_S = 3600
# HTTP API calls run at once (http_api.API): each may leave a full sweep its client has yet to fetch.
API_CALLS_AT_ONCE = 4
# Files of a prefix (the HTTP API's "api-") kept at most: two full sweeps (frames + GIF) at the largest
# size per call running at once, so a burst of calls cannot fill the disk; a client fetches its files right away.
FILES_PER_PREFIX = 2 * API_CALLS_AT_ONCE * (MAX_IMAGES_PER_CALL + 1)


@dataclass
class Result:
    """One image written as PNG with its settings, and what produced it."""

    path: Path
    metadata: dict[str, Any]
    key: Any = None  # the settings and photos it came from, to notice when nothing changed


class EditKey(NamedTuple):
    """What decides an edit (an edit Result's key): equal keys, equal edits."""

    settings: EditSettings
    photo: str  # the sha256 of the photo's pixels
    face_box: tuple[int, int, int, int]  # which of its faces
    before: Path  # the photo's upright PNG that PhotoEdits keeps (not part of what decides, but kept with it)

    def same_face(self, photo: EditPhoto | None) -> bool:
        """Whether this edit is of `photo`'s face: its settings apply to it."""
        return photo is not None and (self.photo, tuple(self.face_box)) == (photo.sha256, tuple(photo.face.box))


@dataclass
class PhotoEdits:
    """The Edit a photo tab's share of a Session: the photo being edited, made ready once (slider moves reuse
    it), and its edits."""

    photo: EditPhoto | None = None  # the face chosen, its AUs read, its crop: what every edit of it needs
    before: Path | None = None  # the upright photo as a PNG: the before/after's before, and read again on a click
    history: list[Result] = field(default_factory=list)  # newest first, each keyed by an EditKey
    shown: Result | None = None  # the edit on the page
    requested: Any = None  # the photo's face and the values of the newest edit asked for (see Session.requested)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the photo: on ZeroGPU every model call pickles the tab's Session into the GPU worker (for
        Stop, rendering.StepReporter), and the photo, full size, can weigh a hundred MB; an edit passes it itself."""
        return {**self.__dict__, "photo": None}

    def files(self) -> list[Path]:
        """The edits' files and the photos they came from."""
        photos = {result.key.before for result in self.history} | ({self.before} if self.before else set())
        return [result.path for result in self.history] + sorted(photos)

    def take(self, photo: EditPhoto | None, before: Path | None) -> set[Path]:
        """Edit `photo` (its upright PNG `before`) from now on, or no photo; return the files no longer shown."""
        shown_before = set(self.files())
        self.photo, self.before = photo, before
        return shown_before - set(self.files())

    def remember(self, result: Result) -> set[Path]:
        """Put an edit first in its history; return the files no longer shown."""
        shown_before = set(self.files())
        self.history = [result, *self.history][:HISTORY_SIZE]
        self.shown = result
        return shown_before - set(self.files())


@dataclass
class Session:
    """What one browser tab keeps on the server: its results and its Stop presses."""

    history: list[Result] = field(default_factory=list)  # newest first
    shown: Result | None = None  # the result on the page: the newest, or the one clicked in the history
    neutral: Result | None = None  # the all-AUs-0 twin of the latest image, reused while only AUs change
    sweep_files: list[Path] = field(default_factory=list)
    sweep_au: str | None = None  # the AU the sweep files step through
    animation_files: list[Path] = field(default_factory=list)  # the newest animation's frames, then its videos
    motion_preview: Path | None = None  # the GIF of the newest quick look at an animation's motion
    # The page values (seed left out: Keep seed off draws a new one) and photos of the newest render asked
    # for. A slider preview of exactly these arrives too late to be of use: it would only hide the render.
    requested: Any = None
    # A counter rather than a flag: a run stops when it changes under it, so a later run
    # starting cannot clear a Stop meant for an earlier one, and a Stop with nothing running is harmless.
    stops: int = 0
    # The tab's own folder: its results, and its face photos, biometric data, each upload copied here and
    # deleted from Gradio's cache (OutputFolder.take_photos), where anyone with the URL could fetch it for an hour.
    folder: Path | None = None  # made on the first file; None in the page's initial state that Gradio copies
    photos: dict[str, Path] = field(default_factory=dict)  # upload path as the page sends it -> the tab's copy
    edits: PhotoEdits = field(default_factory=PhotoEdits)  # the Edit a photo tab's photo and edits

    def files(self) -> list[Path]:
        neutral = [self.neutral.path] if self.neutral else []
        motion = [self.motion_preview] if self.motion_preview else []
        return [result.path for result in self.history] + neutral + self.sweep_files + self.animation_files + \
            motion + list(self.photos.values()) + self.edits.files()

    def remember(self, result: Result, neutral: Result | None) -> set[Path]:
        """Put a result first in the history (and a new neutral twin); return the files no longer shown."""
        shown_before = set(self.files())
        self.neutral = neutral or self.neutral
        self.history = [result, *self.history][:HISTORY_SIZE]
        self.shown = result
        return shown_before - set(self.files())


class OutputFolder:
    """Result files (PNG with settings, GIF) that Gradio copies into its cache to serve. Each file has an
    owner: a Session (the file goes into its folder) or the prefix of the HTTP API's files ("api-")."""

    def __init__(self, files_per_prefix: int = FILES_PER_PREFIX) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="fineface-")  # removed when the app exits
        self.root = Path(self._folder.name)
        self.files_per_prefix = files_per_prefix
        self._prefixed: dict[str, deque[Path]] = {}  # per prefix, its files oldest first
        self._holders: Counter[str] = Counter()  # per upload in Gradio's cache, the API calls rendering from it
        # API calls and tabs may write files concurrently; reentrant, as taking photos makes the folder.
        self._lock = threading.RLock()

    def png(self, image: Image.Image, metadata: dict[str, Any], owner: Session | str) -> Path:
        return self._kept(save_png(image, self._new_path(owner, ".png"), metadata), owner)

    def jpeg(self, image: Image.Image, owner: Session | str) -> Path:
        """A small picture without settings (a preview): a tenth of the PNG's bytes, quick to send."""
        path = self._new_path(owner, ".jpg")
        image.convert("RGB").save(path, quality=85)
        return self._kept(path, owner)

    def gif(self, frames: Sequence[Image.Image], owner: Session | str, frame_ms: int = 120) -> Path:
        """An endless loop that plays forward then back, so the expression never jumps."""
        path = self._new_path(owner, ".gif")
        loop = list(frames) + list(frames[-2:0:-1])
        loop[0].save(path, save_all=True, append_images=loop[1:], duration=frame_ms, loop=0)
        return self._kept(path, owner)

    def new_file(self, prefix: str, suffix: str) -> Path:
        """A fresh path for a file of `prefix` that the caller writes itself (a video, an archive), counted
        against the prefix's limit like the others."""
        return self._kept(self._new_path(prefix, suffix), prefix)

    def new_folder(self, session: Session) -> Path:
        """A fresh folder in the session's, for files whose own names are what a download saves them as."""
        return Path(tempfile.mkdtemp(dir=self.folder_of(session)))

    def scratch(self) -> tempfile.TemporaryDirectory:
        """A folder deleted when its `with` block ends, for files that only go into another (an archive)."""
        return tempfile.TemporaryDirectory(prefix="scratch-", dir=self.root)

    def _new_path(self, owner: Session | str, suffix: str) -> Path:
        if isinstance(owner, Session):
            return self.folder_of(owner) / f"{uuid.uuid4().hex}{suffix}"
        return self.root / f"{owner}{uuid.uuid4().hex}{suffix}"

    def _kept(self, path: Path, owner: Session | str) -> Path:
        """Count a new file of a prefix, deleting the oldest beyond `files_per_prefix` (a session's files
        are its own to keep)."""
        if isinstance(owner, str):
            with self._lock:
                files = self._prefixed.setdefault(owner, deque())
                files.append(path)
                while len(files) > self.files_per_prefix:
                    files.popleft().unlink(missing_ok=True)
        return path

    def folder_of(self, session: Session) -> Path:
        """The session's folder (own_folder), where a new file goes; and the folders of sessions untouched
        for SESSION_IDLE_S are deleted."""
        with self._lock:
            folder = self.own_folder(session)
            limit = time.time() - SESSION_IDLE_S
            for other in self.root.glob("session-*"):
                if modified(other) < limit:
                    shutil.rmtree(other, ignore_errors=True)
            return folder

    def own_folder(self, session: Session) -> Path:
        """The session's folder, made on first use, marked as used now. A session swept while idle starts
        again from an empty folder. No sweep of the others: each request of a tab (a drag's previews
        among them) calls this, and the sweep lists every folder."""
        with self._lock:
            if session.folder is None or not session.folder.is_dir():
                if session.folder is not None:  # swept: what it pointed to is gone
                    session.history, session.shown, session.neutral = [], None, None
                    session.sweep_files, session.animation_files, session.motion_preview = [], [], None
                    session.photos.clear()
                    session.edits = PhotoEdits()
                session.folder = Path(tempfile.mkdtemp(prefix="session-", dir=self.root))
            os.utime(session.folder)
            return session.folder

    def take_photos(self, session: Session, uploads: Sequence[str | os.PathLike]) -> list[Path]:
        """The session's own copies of the uploaded photos, in order: each upload is copied into the session's
        folder on first sight and deleted from Gradio's cache (unless an API call is rendering from it);
        copies of photos no longer among `uploads` are deleted. Called at the start of each of the tab's
        requests, it marks the tab as in use."""
        with self._lock:  # the page's render and face preview may send the same new upload at once
            folder = self.own_folder(session)
            for upload in map(str, uploads):
                if upload not in session.photos and Path(upload).is_file():
                    # A folder per photo keeps the file's own name, which messages show ("photo 2 (beach.jpg)").
                    copy = Path(tempfile.mkdtemp(dir=folder)) / Path(upload).name
                    session.photos[upload] = Path(shutil.copyfile(upload, copy))
                    self._delete_unless_held(upload)
            for gone in set(session.photos) - set(map(str, uploads)):
                shutil.rmtree(session.photos.pop(gone).parent, ignore_errors=True)
        # An upload neither here nor on disk is passed on, to be reported as a missing file.
        return [session.photos.get(str(upload), Path(upload)) for upload in uploads]

    @contextmanager
    def holding(self, uploads: Sequence[str]) -> Iterator[None]:
        """Keep these uploads in Gradio's cache while an API call renders from them, then delete each one
        that no other call still holds. Gradio stores an upload under its content's hash, so two clients
        sending the same photo share one file: the first call to end must not take it from the other."""
        with self._lock:
            self._holders.update(uploads)
        try:
            yield
        finally:
            with self._lock:
                self._holders.subtract(uploads)
                for upload in uploads:
                    self._delete_unless_held(upload)

    def _delete_unless_held(self, upload: str) -> None:
        if self._holders[upload] > 0:
            return
        self._holders.pop(upload, None)
        Path(upload).unlink(missing_ok=True)
        with suppress(OSError):  # Gradio's folder for this upload, empty now unless it holds more
            Path(upload).parent.rmdir()

    def close(self, session: Session) -> None:
        """Delete everything the session kept, its folder of results and photos (Gradio's delete_callback)."""
        with self._lock:
            if session.folder is not None:
                shutil.rmtree(session.folder, ignore_errors=True)
            session.photos.clear()

    @staticmethod
    def discard(paths: Iterable[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    def discard_older_than(self, seconds: float, prefix: str) -> None:
        limit = time.time() - seconds
        self.discard(path for path in self.root.glob(f"{prefix}*") if modified(path) < limit)


def modified(path: Path) -> float:
    """When the file or folder was last written; infinitely recent if another thread just deleted it."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return math.inf
