"""Where model files come from: the local weights folder, the Hugging Face cache, or the Hub.

Every file is looked for in that order. Nothing is downloaded when the Hub cannot be reached:
instead one MissingWeightsError lists every missing file, where it was looked for, and how to get it.
A download that fails on the Hub's side (no such repo, gated, a missing file, a server error, a full
disk) ends in a DownloadError that says which and what to do. No message names a server path:
files are named by repo id, or relative to the weights folder.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
from pathlib import Path
from typing import Iterable
from urllib.parse import urlparse

from ..errors import DownloadError, MissingWeightsError
from .model_sources import Weight

# Relative on purpose: the folder the app is started from, as the README says.
WEIGHTS_DIR = Path(os.environ.get("FINEFACE_WEIGHTS_DIR", "weights"))
DOWNLOAD_COMMAND = "fineface-ui download"
CACHE_FOLDER = "the Hugging Face cache folder (HF_HUB_CACHE; by default ~/.cache/huggingface/hub)"
TEMPORARY_STATUSES = {408, 429, 500, 502, 503, 504}

log = logging.getLogger(__name__)


def keep_compiled_code_beside_the_weights() -> None:
    """Where torch.compile keeps what it compiled (Inductor's graphs, Triton's kernels and autotuning):
    the weights folder's torch-compile-cache, unless TORCHINDUCTOR_CACHE_DIR names another.

    PyTorch's own default is a folder in /tmp, which a reboot or a Space's restart empties; a start that
    finds its compiled code skips most of the warm-up's minute or two (docs/benchmarks.md). A weights
    folder that cannot be written (a read-only mount, an image) keeps PyTorch's default: the compile
    would fail there, and the app with it.
    """
    if "TORCHINDUCTOR_CACHE_DIR" in os.environ:
        return
    folder = (WEIGHTS_DIR / "torch-compile-cache").resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK)
    except OSError:
        writable = False
    if writable:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
        log.info("torch.compile keeps what it compiles in %s.", display_name(folder))
    else:
        log.warning("%s cannot be written: torch.compile's cache stays in PyTorch's default folder, which a "
                    "restart may empty.", display_name(folder))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint answers a TCP connection at all.

    Offline, huggingface_hub retries for about half a minute before giving up; a user waiting on a
    slider deserves an answer in seconds, so we ask the network once, quickly.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # only the proxy can tell; a direct connection would wrongly fail
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _local_folder(repo: str) -> Path | None:
    """A folder given directly, or <weights folder>/<repo id>; None when the repo is only on the Hub."""
    for folder in (Path(repo).expanduser(), WEIGHTS_DIR / repo):
        if folder.is_dir():
            return folder
    return None


def _cache_parts(path: Path) -> tuple[str, str, tuple[str, ...]] | None:
    """(repo id, commit, path inside the repo) for a file or folder in the Hugging Face cache."""
    parts = Path(path).parts
    for at, part in enumerate(parts[:-2]):
        if part.startswith("models--") and parts[at + 1] == "snapshots":
            return part.removeprefix("models--").replace("--", "/"), parts[at + 2], parts[at + 3:]
    return None


def weights_label() -> str:
    """The weights folder as messages name it: never an absolute server path."""
    return "weights" if WEIGHTS_DIR == Path("weights") else "$FINEFACE_WEIGHTS_DIR"


def display_name(path: Path) -> str:
    """A file as a user may see it: repo id and file for the Hub cache, relative for the weights folder."""
    path = Path(path)
    cached = _cache_parts(path)
    if cached is not None:
        return "/".join([cached[0], *cached[2]])
    if path.resolve().is_relative_to(WEIGHTS_DIR.resolve()):
        return str(Path(weights_label()) / path.resolve().relative_to(WEIGHTS_DIR.resolve()))
    return path.name if path.is_dir() else f"{path.parent.name}/{path.name}"


def without_paths(text: str) -> str:
    """A library's error text with every absolute path in it shown as display_name shows files."""
    return re.sub(r"/[^\s'\"(),:]+", lambda match: display_name(Path(match.group())), text)


def provenance(weight: Weight, path: Path) -> dict[str, str]:
    """The repo id and revision a loaded weight came from ("local" for a folder outside the Hub cache)."""
    cached = _cache_parts(path)
    if cached is not None:
        return {"repo": cached[0], "revision": cached[1]}
    given = Path(weight.repo).expanduser()
    return {"repo": given.name if given.is_dir() else weight.repo, "revision": "local"}


def _places(weight: Weight) -> str:
    folder = _local_folder(weight.repo)
    if folder is not None:
        shown = display_name(folder)
        if weight.filename is None and missing_model_files(folder, weight):
            return f"{shown}, which lacks {', '.join(missing_model_files(folder, weight))}"
        return shown
    return f"{weights_label()}/{weight.repo}; the Hugging Face cache"


def missing_model_files(folder: Path, weight: Weight) -> list[str]:
    """Files a diffusers-layout folder lacks for `weight` (an interrupted download leaves some out)."""
    needed = [name for name in weight.files(patterns=True) if "*" not in name]
    if "tokenizer" in weight.components:  # saved either way, a tokenizer always has this file
        needed.append("tokenizer/tokenizer_config.json")
    return [name for name in needed if not (folder / name).is_file()]


def locate(weight: Weight) -> Path | None:
    """The weight on disk (local folder or Hub cache), complete, without touching the network."""
    from huggingface_hub import snapshot_download, try_to_load_from_cache
    from huggingface_hub.errors import LocalEntryNotFoundError

    folder = _local_folder(weight.repo)
    if folder is not None:
        found = folder / weight.filename if weight.filename else folder
    elif weight.filename is not None:
        cached = try_to_load_from_cache(weight.repo, weight.filename)
        found = Path(cached) if isinstance(cached, str) else None
    else:
        try:
            found = Path(snapshot_download(weight.repo, allow_patterns=weight.files(patterns=True),
                                           local_files_only=True))
        except LocalEntryNotFoundError:
            found = None
    if found is None or not found.exists() or (weight.filename is None and missing_model_files(found, weight)):
        return None
    return found


def download(weight: Weight, force: bool = False) -> Path:
    """Fetch one weight from the Hub into its cache, with huggingface_hub's progress bars."""
    from huggingface_hub import hf_hub_download, snapshot_download

    try:
        if weight.filename is not None:
            return Path(hf_hub_download(weight.repo, weight.filename, force_download=force))
        folder = Path(snapshot_download(weight.repo, allow_patterns=weight.files(patterns=True),
                                        force_download=force))
    except Exception as error:
        raise download_failure(weight, error) from None
    missing = missing_model_files(folder, weight)  # a snapshot skips, without a word, what the repo lacks
    if missing:
        raise DownloadError(f"The repository {weight.repo} has no file {', '.join(missing)}.{_elsewhere(weight)}")
    return folder


def _elsewhere(weight: Weight) -> str:
    return f" Set {weight.variable} to a repo id or local folder that has it." if weight.variable else ""


def download_failure(weight: Weight, error: Exception) -> DownloadError:
    """The user's version of a failed download: what went wrong and what to do about it."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        DisabledRepoError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
    )

    if isinstance(error, GatedRepoError):
        return DownloadError(
            f"{weight.repo} is gated: accept its licence on {constants.ENDPOINT}/{weight.repo} while logged in, "
            "then log in here with `hf auth login` or set HF_TOKEN to an access token."
        )
    if isinstance(error, RepositoryNotFoundError):
        return DownloadError(
            f"The repository {weight.repo} was not found on the Hub ({constants.ENDPOINT}); it may have been "
            f"deleted or renamed, or be private (then log in with `hf auth login` or set HF_TOKEN).{_elsewhere(weight)}"
        )
    if isinstance(error, RemoteEntryNotFoundError):
        return DownloadError(f"The repository {weight.repo} has no file {weight.filename}.{_elsewhere(weight)}")
    if isinstance(error, DisabledRepoError):
        return DownloadError(f"The repository {weight.repo} has been disabled on the Hub.{_elsewhere(weight)}")
    # A persistent 5xx reaches us as LocalEntryNotFoundError caused by the HTTP error.
    http = next((e for e in (error, error.__cause__) if isinstance(e, HfHubHTTPError) and e.response is not None), None)
    status = http.response.status_code if http is not None else None
    if status is not None and status not in TEMPORARY_STATUSES:
        return DownloadError(f"Downloading {weight} failed: the Hugging Face Hub refused it (HTTP {status}). "
                             "Check that your token (HF_TOKEN or `hf auth login`) may read this repository.")
    if status is not None or isinstance(error, LocalEntryNotFoundError) or _is_network_error(error):
        reason = f"answered HTTP {status}" if status else "could not be reached or broke off"
        return DownloadError(
            f"Downloading {weight} failed: the Hugging Face Hub ({constants.ENDPOINT}) {reason}. This is "
            f"usually temporary: try again in a few minutes (`{DOWNLOAD_COMMAND}` fetches everything ahead of time)."
        )
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DownloadError(f"Downloading {weight} failed: {CACHE_FOLDER} is full. Free some space there, "
                             "or point HF_HOME at a folder with room for about 10 GB.")
    if isinstance(error, OSError) and error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return DownloadError(f"Downloading {weight} failed: {CACHE_FOLDER} is not writable. "
                             "Point HF_HOME at a folder you can write to.")
    log.warning("downloading %s failed", weight, exc_info=error)  # not a known Hub trouble: keep the details
    return DownloadError(f"Downloading {weight} failed ({type(error).__name__}); the log has the details.")


def _is_network_error(error: Exception) -> bool:
    import httpx2  # huggingface_hub's HTTP client

    return isinstance(error, (httpx2.TransportError, ConnectionError, TimeoutError))


def resolve(weights: Iterable[Weight], allow_download: bool = True) -> dict[Weight, Path]:
    """Every weight's path; downloads what is missing when possible, else one error naming all of it."""
    found = {weight: locate(weight) for weight in dict.fromkeys(weights)}
    absent = [weight for weight, path in found.items() if path is None]
    # A local folder that lacks a file is a user mistake the Hub cannot fix.
    fetchable = [w for w in absent if _local_folder(w.repo) is None]
    if absent and allow_download and absent == fetchable and hub_reachable():
        for weight in absent:
            found[weight] = download(weight)
        absent = []
    if absent:
        raise MissingWeightsError(missing_message(absent, hub_tried=allow_download and bool(fetchable)))
    return found  # type: ignore[return-value]


def missing_message(absent: list[Weight], hub_tried: bool) -> str:
    lines = ["Model weights are missing:"]
    lines += [f"  - {weight} (looked in: {_places(weight)})" for weight in absent]
    if hub_tried:
        lines.append("The Hugging Face Hub could not be reached (or HF_HUB_OFFLINE=1), so nothing was downloaded.")
    lines.append(
        f"Run `{DOWNLOAD_COMMAND}` on a machine with internet access, or put the files in "
        f"{weights_label()}/<repo id>/ (for example {weights_label()}/Tvaranka/fineface/au_encoder.ckpt)."
    )
    return "\n".join(lines)
