"""What is installed and where each model file is: `fineface-ui doctor` and `fineface-ui download`."""

from __future__ import annotations

from .hub.model_sources import AU_READER, PinnedFile, all_weights, clip_weight
from .hub.pinned import check_hash, download_pinned, locate_pinned, pinned_location, shown
from .hub.weights import display_name, download, hub_reachable, locate, resolve


def download_all(force: bool = False, evaluation: bool = False) -> None:
    """Fetch every Hub file the pipelines need (progress bars on the terminal), the face models and the AU reader;
    with `evaluation` also CLIP, which `fineface-ui eval` needs (for compute nodes without internet).

    `force` fetches again what is already there: the cure for a truncated or corrupt file.
    """
    from .faces.model_pack import download_model_pack

    weights = [*all_weights(), *([clip_weight()] if evaluation else [])]
    found = {weight: download(weight, force=True) for weight in weights} if force else resolve(weights)
    for weight, path in found.items():
        print(f"ok  {weight}: {display_name(path)}")
    print(f"ok  InsightFace buffalo_l: {download_model_pack()}")
    print(f"ok  {AU_READER.title}: {display_name(download_pinned(AU_READER, force))}")


def pinned_report(pinned: PinnedFile) -> str:
    """One line on a file from outside the Hub: found where, missing, or not the pinned file."""
    from .errors import FineFaceError

    try:
        found = locate_pinned(pinned)
        if found is None:
            return f"MISSING {pinned.title} {pinned.filename} (see `fineface-ui download`)"
        if found == pinned_location(pinned):
            check_hash(pinned, found, shown(pinned))
    except FineFaceError as error:
        return f"WRONG   {pinned.title}: {error}"
    return f"found   {pinned.title}: {found}"


def report() -> str:
    import onnxruntime
    import torch

    from .errors import MissingWeightsError
    from .faces.model_pack import find_model_pack
    from .hub.versions import library_versions

    lines = [f"{name} {version}" for name, version in library_versions().items()]
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"
    lines.append(f"CUDA: {cuda}")
    lines.append(f"ONNX Runtime {onnxruntime.__version__} providers: {', '.join(onnxruntime.get_available_providers())}")
    lines.append(f"Hugging Face Hub reachable: {'yes' if hub_reachable() else 'no'}")
    for weight in all_weights():
        path = locate(weight)
        lines.append(f"{'found  ' if path else 'MISSING'} {weight}" + (f": {path}" if path else ""))
    try:
        lines.append(f"found   InsightFace buffalo_l: {find_model_pack()}")
    except MissingWeightsError:
        lines.append("MISSING InsightFace buffalo_l (see `fineface-ui download`)")
    lines.append(pinned_report(AU_READER))
    clip = locate(clip_weight())
    lines.append(f"found   {clip_weight()}: {clip}" if clip else
                 f"absent  {clip_weight()}: only `fineface-ui eval` needs it (`fineface-ui download --eval`)")
    return "\n".join(lines)
