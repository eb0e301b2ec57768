"""The two FineFace models, described as data: which files each loads and which parts it has.

One FineFacePipeline runs either; `FineFacePipeline.from_pretrained(variant=...)` reads this
description to decide what to load. The name is the metadata's "pipeline" value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from ..aus import NUM_AUS
from ..hub.model_sources import Weight, identity_weights, text_weights

Source = str | os.PathLike | None


@dataclass(frozen=True)
class Variant:
    name: str
    weights: Callable[..., dict[str, Weight]]  # source overrides -> the files it loads, by role
    sources: tuple[str, ...]  # the overrides `weights` takes (repo ids or local folders)
    au_encoder_width: int | None  # the AU encoder's Linear(12, width); None: it fills the token
    lora: bool
    identity_adapter: bool  # IP-Adapter-FaceID portrait: face embedding -> identity tokens
    separate_vae: bool  # the VAE comes from its own repo, not the base model's

    def au_hidden_dim(self, token_dim: int) -> int:
        return self.au_encoder_width if self.au_encoder_width is not None else token_dim - NUM_AUS

    def files(self, **sources: Source) -> dict[str, Weight]:
        """What this variant loads, by role; a source it does not use is an error, not silently dropped."""
        unused = sorted(name for name, value in sources.items() if value is not None and name not in self.sources)
        if unused:
            raise ValueError(f"The {self.name} variant loads no {', '.join(unused)} "
                             f"(its sources: {', '.join(self.sources)}).")
        return self.weights(**{name: sources.get(name) for name in self.sources})


# Text + AUs: SD 2.1-base, AU encoder Linear(12, 64) zero-padded to the 1024-wide token, rank-32 LoRA.
SD21_TEXT = Variant("sd21", text_weights, ("base_model", "fineface_weights", "preview_decoder"), au_encoder_width=64,
                    lora=True, identity_adapter=False, separate_vae=False)
# Text + face + AUs: Realistic Vision 4.0 (SD 1.5) with sd-vae-ft-mse; AU encoder Linear(12, 756)
# filling the 768-wide token; no LoRA; IP-Adapter-FaceID portrait for the face.
SD15_IDENTITY = Variant("sd15-identity", identity_weights,
                        ("base_model", "fineface_weights", "ip_adapter_weights", "vae", "preview_decoder"),
                        au_encoder_width=None, lora=False, identity_adapter=True, separate_vae=True)
VARIANTS = {variant.name: variant for variant in (SD21_TEXT, SD15_IDENTITY)}


def variant_named(variant: Variant | str) -> Variant:
    """A Variant, or its name as the metadata's "pipeline" gives it."""
    if isinstance(variant, Variant):
        return variant
    if variant not in VARIANTS:
        raise ValueError(f"Unknown variant {variant!r}: choose one of {', '.join(VARIANTS)}.")
    return VARIANTS[variant]
