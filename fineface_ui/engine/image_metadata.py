"""What an image's metadata records: every setting, the models and their revisions, the device, the
library versions, and what CLIP cut from the prompts. png_info.py stores it in the PNG, and
GenerationSettings.from_metadata reads the settings back to reproduce the image.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from transformers import PreTrainedTokenizerBase

from ..hub.versions import library_versions
from ..settings import GenerationSettings
from .lora import FusedLora
from .variants import Variant


class RecordedModel(Protocol):
    """What the metadata records of the pipeline that made an image (FineFacePipeline has it all);
    a protocol, so that this module need not import the pipeline that imports it."""

    variant: Variant
    models: dict[str, Any]
    lora: FusedLora | None
    identity: Any

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...


def tokens_dropped(tokenizer: PreTrainedTokenizerBase, prompt: str, negative_prompt: str) -> dict[str, int]:
    """How many tokens of each prompt CLIP cannot see: the text encoder reads at most 77, the rest is cut."""
    return {name: max(0, len(tokenizer(text).input_ids) - tokenizer.model_max_length)
            for name, text in (("prompt", prompt), ("negative_prompt", negative_prompt))}


def image_metadata(pipe: RecordedModel, settings: GenerationSettings, face_embeds: Any,
                   dropped: dict[str, int]) -> dict[str, Any]:
    """The metadata of the images `pipe` made from `settings` (and `face_embeds`, when faces were given)."""
    count = 0 if face_embeds is None else len(getattr(face_embeds, "embeddings", face_embeds))
    faces = {"faces": count} if pipe.identity is not None else {}
    # Recorded only when text was cut, so that the image's settings say what it was really made from.
    cut = {"tokens_dropped": dropped} if any(dropped.values()) else {}
    return {
        **settings.as_dict(),
        "lora_scale": pipe.lora.scale if pipe.lora is not None else None,  # the strength actually fused
        "pipeline": pipe.variant.name,
        "models": pipe.models,
        "device": str(pipe.device),
        "dtype": str(pipe.dtype).removeprefix("torch."),
        "versions": library_versions(),
        **faces,
        **cut,
    }
