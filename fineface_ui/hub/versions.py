"""Versions of the libraries that decide the pixels, recorded with every image."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

APP_VERSION = "0.1.0"
PACKAGES = ("torch", "diffusers", "transformers", "peft", "huggingface-hub")


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    found = {"fineface-ui": APP_VERSION}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
