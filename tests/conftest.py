"""Shared fixtures: tiny random-weight models written to disk in the released formats, built once."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Tests never touch the network: huggingface_hub reads this at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def compiled_code_folder():
    """torch.compile's cache where PyTorch keeps it, not in the checkout's weights/ (Studio.from_pretrained's
    default): later runs on this machine find what earlier ones compiled."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
        yield


@pytest.fixture(scope="session")
def sd21_files(tmp_path_factory):
    from fineface_ui.standins.tiny_models import write_sd21_fineface

    return write_sd21_fineface(tmp_path_factory.mktemp("sd21"))


@pytest.fixture(scope="session", autouse=True)
def preview_decoder_variable(tmp_path_factory):
    """FINEFACE_PREVIEW_DECODER names a tiny TAESD folder, as a user points a model at a local folder: code
    given only some of the sources (the CLI's flags, a base model and FineFace folder) loads it, not the Hub's."""
    from fineface_ui.standins.tiny_models import write_preview_decoder

    folder = write_preview_decoder(tmp_path_factory.mktemp("preview-decoder") / "taesd")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FINEFACE_PREVIEW_DECODER", str(folder))
        yield folder


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
    from fineface_ui.engine.identity_pipeline import FineFaceIdentityPipeline

    return FineFaceIdentityPipeline.from_pretrained(**sd15_files, device="cpu")


@pytest.fixture(scope="session")
def magicface_files(tmp_path_factory):
    from fineface_ui.standins.tiny_magicface import write_magicface

    return write_magicface(tmp_path_factory.mktemp("magicface"))


@pytest.fixture(scope="session")
def magicface_pipe(magicface_files):
    from fineface_ui import MagicFacePipeline

    return MagicFacePipeline.from_pretrained(**magicface_files, device="cpu")


@pytest.fixture(scope="session")
def random_studio(tmp_path_factory):
    """The Studio of `--random-weights`, with every model loaded at start as `--preload` does."""
    from fineface_ui.studio import Studio

    studio = Studio.with_random_weights(tmp_path_factory.mktemp("random-weights"))
    studio.face_embedder(), studio.identity_pipeline()
    return studio


@pytest.fixture(scope="session")
def fast():
    """Settings that keep a tiny-model render well under a second."""
    return {"num_inference_steps": 2, "height": 256, "width": 256}


@pytest.fixture(scope="session")
def pixels():
    """An image (PIL or a file path) as RGB int16 values, ready to subtract."""
    def as_array(image: Image.Image | str | Path) -> np.ndarray:
        if isinstance(image, (str, Path)):
            with Image.open(image) as opened:
                return np.asarray(opened.convert("RGB"), dtype=np.int16)
        return np.asarray(image.convert("RGB"), dtype=np.int16)

    return as_array


@pytest.fixture(scope="session")
def attention_spy():
    """`with attention_spy(unet, record):` calls `record(processor name, processor)` before every
    attention processor of `unet` runs; yields the processors as they were, restored on exit."""
    @contextmanager
    def spying(unet, record):
        originals = dict(unet.attn_processors)

        def spy(name, processor):
            def call(attn, hidden_states, encoder_hidden_states=None, **kwargs):
                record(name, processor)
                return processor(attn, hidden_states, encoder_hidden_states, **kwargs)
            return call

        unet.set_attn_processor({name: spy(name, processor) for name, processor in originals.items()})
        try:
            yield originals
        finally:
            unet.set_attn_processor(dict(originals))  # diffusers empties the dict it is given

    return spying


@pytest.fixture
def no_model_loads(monkeypatch):
    """A command refused before any work: loading its models fails the test."""
    import fineface_ui.cli

    def no_models(*args):
        raise AssertionError("a model was loaded for a request refused anyway")

    monkeypatch.setattr(fineface_ui.cli, "_studio", no_models)
