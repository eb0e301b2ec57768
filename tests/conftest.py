"""Shared fixtures: tiny random-weight models written to disk in the released formats, built once."""

from __future__ import annotations

import os

import pytest

# Tests never touch the network: huggingface_hub reads this at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def sd21_files(tmp_path_factory):
    from fineface_ui.standins.tiny_models import write_sd21_fineface

    base, fineface = write_sd21_fineface(tmp_path_factory.mktemp("sd21"))
    return {"base_model": base, "fineface_weights": fineface}


@pytest.fixture(scope="session")
def sd21_pipe(sd21_files):
    from fineface_ui import FineFacePipeline

    return FineFacePipeline.from_pretrained(**sd21_files, device="cpu")


@pytest.fixture(scope="session")
def sd15_files(tmp_path_factory):
    from fineface_ui.standins.tiny_models import write_sd15_fineface

    return write_sd15_fineface(tmp_path_factory.mktemp("sd15"))


@pytest.fixture(scope="session")
def identity_pipe(sd15_files):
    from fineface_ui.identity_pipeline import FineFaceIdentityPipeline

    return FineFaceIdentityPipeline.from_pretrained(**sd15_files, device="cpu")


FAST = {"num_inference_steps": 2, "height": 256, "width": 256}
