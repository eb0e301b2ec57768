"""Model files from outside the Hub (model_sources.PinnedFile): found in the weights folder, fetched from
their URL, and used only when their sha256 is the one pinned. An environment variable may point a model
at another file (used as it is) or at a Hub repo (fetched as every Hub weight is)."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

from ..errors import CheckpointError, DownloadError, MissingWeightsError
from . import weights
from .model_sources import PinnedFile, Weight

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def pinned_location(pinned: PinnedFile) -> Path:
    return weights.WEIGHTS_DIR / pinned.folder / pinned.filename


def shown(pinned: PinnedFile) -> str:
    """Where the file belongs, as messages name it (no absolute server path)."""
    return f"{weights.weights_label()}/{pinned.folder}/{pinned.filename}"


def check_hash(pinned: PinnedFile, path: Path, shown_as: str) -> None:
    actual = sha256_of(path)
    if actual != pinned.sha256:
        raise CheckpointError(
            f"{shown_as} is not the {pinned.title}: its sha256 is {actual}, expected {pinned.sha256}. "
            f"It is not used. Delete it and run `{weights.DOWNLOAD_COMMAND}` again."
        )


def override_of(pinned: PinnedFile) -> Path | Weight | None:
    """What the variable points at: a file (a value that looks like a path), a Hub repo's file, or nothing."""
    value = os.environ.get(pinned.variable)
    if not value:
        return None
    path = Path(value).expanduser()
    if value.startswith(("/", ".", "~")) or path.suffix == Path(pinned.filename).suffix or path.is_file():
        if not path.is_file():
            raise MissingWeightsError(f"{pinned.variable} names {value}, and there is no such file.")
        return path
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(value)
    except ValueError:  # huggingface_hub's HFValidationError
        raise MissingWeightsError(f"{pinned.variable} names {value}, which is neither a file nor a Hub repo id "
                                  "(owner/name).") from None
    return Weight(value, pinned.filename, pinned.variable)


def locate_pinned(pinned: PinnedFile) -> Path | None:
    """The file on disk without touching the network: the variable's file or Hub repo, else the weights folder."""
    override = override_of(pinned)
    if isinstance(override, Weight):
        return weights.locate(override)
    if override is not None:
        return override
    path = pinned_location(pinned)
    return path if path.is_file() else None


def pinned_path(pinned: PinnedFile, allow_download: bool = True) -> Path:
    """The file to load: found (and, the pinned one, hash-checked), or fetched when it can be, or a
    MissingWeightsError that says how to get it."""
    override = override_of(pinned)
    if isinstance(override, Weight):
        return weights.resolve([override], allow_download)[override]
    if override is not None:
        return override
    path = pinned_location(pinned)
    if path.is_file():
        check_hash(pinned, path, shown(pinned))
        return path
    if allow_download and weights.hub_reachable():
        return fetch_pinned(pinned)
    raise MissingWeightsError(
        f"The {pinned.title} ({shown(pinned)}) was not found. Run `{weights.DOWNLOAD_COMMAND}` on a machine "
        f"with internet access, or download {pinned.url} into {weights.weights_label()}/{pinned.folder}/."
    )


def download_pinned(pinned: PinnedFile, force: bool = False) -> Path:
    """What `fineface-ui download` does for the file: fetch it from where the variable or the catalogue says."""
    override = override_of(pinned)
    if isinstance(override, Weight):
        return weights.download(override, force=force)
    return override or fetch_pinned(pinned, force)


def fetch_pinned(pinned: PinnedFile, force: bool = False) -> Path:
    """Download the file from its URL into the weights folder; a file whose sha256 differs is deleted."""
    path = pinned_location(pinned)
    if path.is_file() and not force:
        check_hash(pinned, path, shown(pinned))
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        with urllib.request.urlopen(pinned.url, timeout=60) as answer, open(partial, "wb") as file:
            shutil.copyfileobj(answer, file, CHUNK)
    except OSError as error:  # URLError, HTTPError and socket timeouts are OSErrors
        partial.unlink(missing_ok=True)
        raise DownloadError(f"Downloading the {pinned.title} from {pinned.url} failed ({error}). Try again, "
                            f"or download it by hand into {weights.weights_label()}/{pinned.folder}/.") from None
    actual = sha256_of(partial)
    if actual != pinned.sha256:
        partial.unlink()
        raise DownloadError(f"The {pinned.title} downloaded from {pinned.url} has sha256 {actual}, expected "
                            f"{pinned.sha256}: the file changed or arrived damaged, and was deleted.")
    return partial.replace(path)
