"""InsightFace's buffalo_l model pack (SCRFD detector + ArcFace recognizer): where it is looked for,
how it is downloaded, and the message that says how to get it when it is nowhere."""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingWeightsError
from ..hub import weights
from ..hub.model_sources import DETECTOR_FILE, PACK_NAME, PACK_URL, RECOGNIZER_FILE


def download_root() -> Path:
    """The root `download` unpacks the pack under (as <root>/models/buffalo_l): <weights folder>/insightface."""
    return weights.WEIGHTS_DIR / "insightface"


def default_roots() -> list[Path]:
    """Folders searched for `models/buffalo_l` when no root is given: the weights folder's, then InsightFace's home."""
    # insightface 2.1 hard-codes "~/.insightface" and reads no INSIGHTFACE_HOME variable.
    return [download_root(), Path("~/.insightface").expanduser()]


def find_model_pack(root: str | Path | None = None) -> Path:
    """Return the buffalo_l folder holding the detector and recognizer, or raise MissingWeightsError."""
    roots = [Path(root).expanduser()] if root is not None else default_roots()
    looked_in = []
    for candidate in roots:
        pack = candidate / "models" / PACK_NAME
        missing = [name for name in (DETECTOR_FILE, RECOGNIZER_FILE) if not (pack / name).is_file()]
        if not missing:
            return pack.resolve()
        reason = f"missing {', '.join(missing)}" if pack.is_dir() else "no such folder"
        looked_in.append(f"  - {_shown(candidate)}/models/{PACK_NAME} ({reason})")
    raise MissingWeightsError(
        f"The face model pack '{PACK_NAME}' (InsightFace: {DETECTOR_FILE} and {RECOGNIZER_FILE}) "
        "was not found. Looked in:\n" + "\n".join(looked_in) + "\n"
        f"To get it, run `{weights.DOWNLOAD_COMMAND}`, or {_by_hand()}."
    )


def _by_hand() -> str:
    return f"download {PACK_URL} and unzip its files into {weights.weights_label()}/insightface/models/{PACK_NAME}/"


def _shown(root: Path) -> str:
    """A search folder as messages name it (no absolute server paths)."""
    root = Path(root).resolve()
    if root == download_root().resolve():
        return f"{weights.weights_label()}/insightface"
    if root == Path("~/.insightface").expanduser().resolve():
        return "~/.insightface"
    return root.name



def pack_shown(pack: Path) -> str:
    """The pack folder as messages name it: '<search folder>/models/buffalo_l'."""
    return f"{_shown(pack.parent.parent)}/models/{pack.name}"


def ensure_model_pack() -> Path:
    """The folder holding models/buffalo_l, downloading the pack when it is nowhere (unless offline: fail fast)."""
    try:
        pack = find_model_pack()
    except MissingWeightsError:
        if not weights.hub_reachable():
            raise
        pack = download_model_pack()
    return pack.parent.parent


def download_model_pack() -> Path:
    """Fetch buffalo_l with InsightFace's own downloader (its URL is PACK_URL, a test checks) into download_root()."""
    from insightface.utils.storage import ensure_available

    root = download_root()
    try:
        ensure_available("models", PACK_NAME, root=str(root))
    except Exception as error:  # InsightFace's downloader raises whatever its HTTP stack raises
        raise MissingWeightsError(
            f"Could not download the InsightFace pack {PACK_NAME} ({type(error).__name__}). "
            f"Instead, {_by_hand()}."
        ) from error
    return find_model_pack(root)
