"""CLIP-I, the paper's image-similarity metric: the cosine similarity of two images' CLIP image embeddings."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image
from transformers import CLIPImageProcessorPil, CLIPVisionModelWithProjection

from ..engine.checkpoints import check_loading_info, corrupt_file_error
from ..engine.loading import default_device_and_dtype, load_component
from ..errors import CheckpointError
from ..hub.model_sources import clip_weight
from ..hub.weights import display_name, provenance, resolve

WEIGHTS_FILE = "model.safetensors"
BATCH_SIZE = 32


class _VisionTower(CLIPVisionModelWithProjection):
    """The image side of a full CLIPModel file. Its text tower, text projection and logit scale are the only
    keys it may leave unused: transformers drops exactly those from unexpected_keys and from its load report."""

    _keys_to_ignore_on_load_unexpected = [r"^text_model\.", r"^text_projection\.", r"^logit_scale$"]


class ClipImageEncoder:
    """CLIP's image tower and preprocessing; `source` is the repo and revision it was loaded from."""

    def __init__(self, model: CLIPVisionModelWithProjection, processor: CLIPImageProcessorPil,
                 source: dict[str, str]) -> None:
        self.model, self.processor, self.source = model, processor, source

    @classmethod
    def from_folder(cls, folder: Path, device: str | torch.device,
                    dtype: torch.dtype = torch.float32) -> ClipImageEncoder:
        """Load from a folder holding the CLIP_FILES, every key of its weights file checked."""
        folder = Path(folder)
        # Mismatched shapes are reported here, naming the keys, rather than by transformers' generic error.
        model, info = load_component(_VisionTower, folder, dtype, output_loading_info=True,
                                     ignore_mismatched_sizes=True)
        check_loading_info(folder / WEIGHTS_FILE, info)
        if info["mismatched_keys"]:
            wrong = sorted(f"{key} is {list(found)}, expected {list(wanted)}"
                           for key, found, wanted in info["mismatched_keys"])
            raise CheckpointError(f"{display_name(folder / WEIGHTS_FILE)} does not match its config.json: "
                                  f"{len(wrong)} wrong shape(s): {'; '.join(wrong[:3])}.")
        try:
            # The PIL processor, not CLIPImageProcessor: that one switches to torchvision's resizing when
            # torchvision is installed, and a score must not depend on which packages are.
            processor = CLIPImageProcessorPil.from_pretrained(folder)
        except OSError as error:
            raise corrupt_file_error(folder, error) from error
        return cls(model.to(device), processor, provenance(clip_weight(folder), folder))

    @classmethod
    def from_pretrained(cls, repo: str | os.PathLike | None = None,
                        device: str | torch.device | None = None) -> ClipImageEncoder:
        """CLIP from a repo id or folder (default: FINEFACE_CLIP, else openai/clip-vit-large-patch14), in fp32."""
        weight = clip_weight(repo)
        path = resolve([weight])[weight]
        encoder = cls.from_folder(path, default_device_and_dtype(device, torch.float32)[0])
        encoder.source = provenance(weight, path)  # a repo id, not the folder name, when it came from one
        return encoder

    def embed(self, images: list[Image.Image]) -> torch.Tensor:
        """Unit-length embeddings, (len(images), projection_dim), float32 on the CPU."""
        chunks = [torch.empty(0, self.model.config.projection_dim)]  # no images: (0, projection_dim)
        with torch.inference_mode():
            for start in range(0, len(images), BATCH_SIZE):
                pixels = self.processor(images=images[start:start + BATCH_SIZE], return_tensors="pt").pixel_values
                embeddings = self.model(pixel_values=pixels.to(self.model.device, self.model.dtype)).image_embeds
                chunks.append(torch.nn.functional.normalize(embeddings.float(), dim=-1).cpu())
        return torch.cat(chunks)


def clip_i(reference_embedding: torch.Tensor, embeddings: torch.Tensor) -> list[float]:
    """The cosine similarity of each of `embeddings` (n, d) to one reference embedding (d,)."""
    return torch.nn.functional.cosine_similarity(embeddings, reference_embedding[None], dim=-1).tolist()
