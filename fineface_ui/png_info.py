"""Settings embedded in PNG files: our exact JSON, plus the A1111 'parameters' text other tools read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from .aus import format_aus
from .edit_settings import EDIT_PIPELINE
from .errors import InvalidInputError
from .settings import SCHEDULERS

JSON_KEY = "fineface"
A1111_KEY = "parameters"
SAMPLER_NAMES = {"dpm++": "DPM++ 2M", "paper": "PNDM"}


def a1111_parameters(metadata: dict[str, Any]) -> str:
    """prompt / 'Negative prompt: ...' / 'Steps: .., Sampler: .., CFG scale: .., Seed: .., Size: ..' plus AUs."""
    fields = {
        "Steps": metadata["num_inference_steps"],
        "Sampler": SAMPLER_NAMES[metadata["scheduler"]],
        "CFG scale": metadata["guidance_scale"],
        "Seed": metadata["seed"],
        "Size": f"{metadata['width']}x{metadata['height']}",
        "Model": next((model["repo"] for variable, model in metadata.get("models", {}).items()
                       if variable.endswith("BASE_MODEL")), ""),
        # Quoted, because A1111's reader splits unquoted values at commas.
        "AUs": json.dumps(format_aus(metadata["aus"][0])),
        "AU scale": metadata["au_scale"],
    }
    if metadata.get("lora_scale") is not None:
        fields["LoRA scale"] = metadata["lora_scale"]
    if "upscale" in metadata:  # A1111's names for its own "hires fix": Size stays the first pass's
        fields["Hires upscale"] = metadata["upscale"]["scale"]
        fields["Denoising strength"] = metadata["upscale"]["strength"]
    lines = [metadata["prompt"]]
    if metadata.get("negative_prompt"):
        lines.append(f"Negative prompt: {metadata['negative_prompt']}")
    lines.append(", ".join(f"{key}: {value}" for key, value in fields.items()))
    return "\n".join(lines)


def save_png(image: Image.Image, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write the image with the settings of exactly this image (one AU entry) embedded."""
    if len(metadata["aus"]) != 1:
        raise ValueError("PNG metadata describes one image: pass FineFaceOutput.metadata_for(i)")
    info = PngImagePlugin.PngInfo()
    # A photo edit is no text-to-image recipe: other tools' "PNG Info" would offer to redo it without its photo.
    if metadata.get("pipeline") != EDIT_PIPELINE:
        info.add_text(A1111_KEY, a1111_parameters(metadata))
    info.add_text(JSON_KEY, json.dumps(metadata))
    image.save(path, format="PNG", pnginfo=info)
    return Path(path)


def read_settings(path: str | Path) -> dict[str, Any]:
    """The FineFace settings stored in a PNG written by this app."""
    try:
        with Image.open(path) as image:
            text = image.info.get(JSON_KEY)
    except (OSError, SyntaxError) as error:
        raise InvalidInputError(f"Cannot read {Path(path).name} as an image: {error}") from error
    except ValueError as error:  # PIL refuses a text chunk that decompresses beyond its limit (a zip bomb guard)
        raise InvalidInputError(f"{Path(path).name} has a text chunk larger than the PNG reader's limit of "
                                f"{PngImagePlugin.MAX_TEXT_CHUNK // 2**20} MB.") from error
    if text is None:
        raise InvalidInputError(f"{Path(path).name} has no FineFace settings (was it saved by FineFace UI as PNG?).")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"The FineFace settings in {Path(path).name} are damaged: {error}") from error
    scheduler = metadata.get("scheduler") if isinstance(metadata, dict) else None
    # Checked for text first: `in` on a dict raises for an unhashable value such as a list.
    if isinstance(metadata, dict) and metadata.get("pipeline") == EDIT_PIPELINE:
        raise InvalidInputError(f"{Path(path).name} is a photo edit: its settings make sense only with its photo. "
                                "Edit the photo again in the Edit tab or with `fineface-ui edit`.")
    if not isinstance(scheduler, str) or scheduler not in SCHEDULERS:
        raise InvalidInputError(f"The FineFace settings in {Path(path).name} are not in a format this version reads.")
    return metadata
