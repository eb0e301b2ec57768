"""The text + face + AUs model (SD 1.5 + IP-Adapter-FaceID) under the name the Python API gave it first.

It is no separate class: `FineFaceIdentityPipeline.from_pretrained(...)` returns a FineFacePipeline of
the "sd15-identity" variant (variants.py), exactly as `FineFacePipeline.from_pretrained(variant=...)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .pipeline import FineFacePipeline
from .variants import SD15_IDENTITY


class FineFaceIdentityPipeline:
    @staticmethod
    def from_pretrained(base_model: str | Path | None = None, fineface_weights: str | Path | None = None,
                        **options: Any) -> FineFacePipeline:
        """FineFacePipeline.from_pretrained with the SD 1.5 identity variant; same sources and options."""
        return FineFacePipeline.from_pretrained(base_model, fineface_weights, variant=SD15_IDENTITY, **options)
