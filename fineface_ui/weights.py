"""Where model files come from: the local weights/ folder, the Hugging Face cache, or the Hub.

Every file is looked for in that order. Nothing is downloaded when the Hub cannot be reached:
instead one MissingWeightsError lists every missing file, where it was looked for, and how to get it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import urlparse

from .errors import MissingWeightsError

WEIGHTS_DIR = Path(os.environ.get("FINEFACE_WEIGHTS_DIR", Path(__file__).resolve().parent.parent / "weights"))

# Each model source can be pointed at a mirror or a fork, by argument or by environment variable.
DEFAULT_SOURCES = {
    "FINEFACE_BASE_MODEL": "stabilityai/stable-diffusion-2-1-base",
    "FINEFACE_WEIGHTS": "Tvaranka/fineface",
    "FINEFACE_SD15_BASE_MODEL": "SG161222/Realistic_Vision_V4.0_noVAE",
    "FINEFACE_SD15_VAE": "stabilityai/sd-vae-ft-mse",
    "FINEFACE_IP_ADAPTER": "h94/IP-Adapter-FaceID",
}

# Only what FineFace loads from a diffusers repo: no safety checker, no fp16/.bin/.ckpt duplicates.
# The root-level pair is for VAE-only repos such as sd-vae-ft-mse.
DIFFUSERS_PATTERNS = [
    "model_index.json", "config.json", "diffusion_pytorch_model.safetensors", "scheduler/*", "tokenizer/*",
    "text_encoder/config.json", "text_encoder/model.safetensors",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
]


def source(env_var: str, override: str | os.PathLike | None = None) -> str:
    """The repo id or folder for one model: the argument, else the environment variable, else the default."""
    if override is not None:
        return str(override)
    return os.environ.get(env_var, DEFAULT_SOURCES[env_var])


@dataclass(frozen=True)
class Weight:
    """One file of a Hub repo or local folder; filename None means the whole diffusers-layout folder."""

    repo: str
    filename: str | None = None

    def __str__(self) -> str:
        return f"{self.filename} from {self.repo}" if self.filename else f"the model {self.repo} (diffusers layout)"


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
    """A folder given directly, or weights/<repo id>; None when the repo is only on the Hub."""
    for folder in (Path(repo).expanduser(), WEIGHTS_DIR / repo):
        if folder.is_dir():
            return folder
    return None


def _places(weight: Weight) -> list[str]:
    from huggingface_hub import constants

    folder = _local_folder(weight.repo)
    if folder is not None:
        if weight.filename is None and missing_model_files(folder):
            return [f"{folder}, which lacks {', '.join(missing_model_files(folder))}"]
        return [str(folder)]
    return [str(WEIGHTS_DIR / weight.repo), f"the Hugging Face cache ({constants.HF_HUB_CACHE})"]


def missing_model_files(folder: Path) -> list[str]:
    """Files a diffusers-layout pipeline or VAE folder lacks (an interrupted download leaves some out)."""
    if (folder / "model_index.json").is_file():
        components = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model", "text_encoder": "model"}
        needed = [f"{name}/{f}" for name, stem in components.items() for f in ("config.json", f"{stem}.safetensors")]
        needed += ["tokenizer/tokenizer_config.json", "scheduler/scheduler_config.json"]
    else:
        needed = ["config.json", "diffusion_pytorch_model.safetensors"]
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
            found = Path(snapshot_download(weight.repo, allow_patterns=DIFFUSERS_PATTERNS, local_files_only=True))
        except LocalEntryNotFoundError:
            found = None
    if found is None or not found.exists() or (weight.filename is None and missing_model_files(found)):
        return None
    return found


def download(weight: Weight) -> Path:
    """Fetch one weight from the Hub into its cache (tqdm progress bars, which Gradio can follow)."""
    from huggingface_hub import hf_hub_download, snapshot_download

    if weight.filename is None:
        return Path(snapshot_download(weight.repo, allow_patterns=DIFFUSERS_PATTERNS))
    return Path(hf_hub_download(weight.repo, weight.filename))


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
    lines += [f"  - {weight} (looked in: {'; '.join(_places(weight))})" for weight in absent]
    if hub_tried:
        lines.append("The Hugging Face Hub could not be reached (or HF_HUB_OFFLINE=1), so nothing was downloaded.")
    lines.append(
        "Run `python -m fineface_ui download` on a machine with internet access, or put the files in "
        f"{WEIGHTS_DIR}/<repo id>/ (for example weights/Tvaranka/fineface/au_encoder.ckpt)."
    )
    return "\n".join(lines)
