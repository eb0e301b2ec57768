"""What is installed and where each model file is: `python -m fineface_ui doctor` and `download`."""

from __future__ import annotations

from .identity_pipeline import FineFaceIdentityPipeline
from .pipeline import FineFacePipeline
from .weights import Weight, hub_reachable, locate, resolve


def all_weights() -> list[Weight]:
    return list(dict.fromkeys(FineFacePipeline.weights_needed() + FineFaceIdentityPipeline.weights_needed()))


def download_all() -> None:
    """Fetch every Hub file both pipelines need (progress bars on the terminal), and the face models."""
    for weight, path in resolve(all_weights()).items():
        print(f"ok  {weight}: {path}")
    print(f"ok  InsightFace buffalo_l: {download_face_models()}")


def download_face_models():
    """buffalo_l from InsightFace's GitHub release, with InsightFace's own downloader, into weights/."""
    from insightface.utils.storage import ensure_available

    from .errors import MissingWeightsError
    from .faces import PACK_NAME, PACK_URL, find_model_pack
    from .weights import WEIGHTS_DIR

    root = WEIGHTS_DIR / "insightface"
    try:
        ensure_available("models", PACK_NAME, root=str(root))
    except Exception as error:  # InsightFace's downloader raises whatever its HTTP stack raises
        raise MissingWeightsError(f"Could not download InsightFace {PACK_NAME} into {root}: {error}. "
                                  f"Get buffalo_l.zip from {PACK_URL} and unzip it into "
                                  f"{root / 'models' / PACK_NAME}.") from error
    return find_model_pack(root)


def report() -> str:
    import onnxruntime
    import torch

    from .faces import find_model_pack
    from .errors import MissingWeightsError
    from .versions import library_versions

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
        lines.append("MISSING InsightFace buffalo_l (see `python -m fineface_ui download`)")
    return "\n".join(lines)
