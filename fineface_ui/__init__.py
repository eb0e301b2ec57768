"""FineFace UI: fine-grained facial expression control (FACS Action Units) for Stable Diffusion.

The names below load on first use, so `import fineface_ui` (and every `--help`) stays quick and
imports no torch, diffusers, gradio or ONNX Runtime until a model is actually needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .hub.versions import APP_VERSION as __version__

_EXPORTS = {
    "ACTION_UNITS": "aus", "AU_NAMES": "aus", "au_dict": "aus", "au_vector": "aus",
    "FineFaceError": "errors", "InvalidInputError": "errors", "NoFaceError": "errors",
    "MissingWeightsError": "errors", "DownloadError": "errors", "CheckpointError": "errors",
    "GPUMemoryError": "errors",
    "FineFacePipeline": "engine.pipeline", "FineFaceOutput": "engine.pipeline",
    "FineFaceIdentityPipeline": "engine.identity_pipeline",
    "Variant": "engine.variants", "SD21_TEXT": "engine.variants", "SD15_IDENTITY": "engine.variants",
    "GenerationSettings": "settings", "Upscale": "settings", "EditSettings": "edit_settings",
    "MagicFacePipeline": "engine.magicface", "EditPhoto": "faces.edit_inputs",
    "Motion": "keyframes", "Keyframe": "keyframes", "write_mp4": "video", "write_gif": "video",
    "FaceEmbedder": "faces.embedder", "FaceEmbeddings": "faces.embedder",
    "AUReader": "faces.au_reader", "AUReading": "faces.au_reader",
    "Studio": "studio",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fineface_ui' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
