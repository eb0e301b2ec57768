"""TAESD, the preview decoder: found, checked and loaded like every other model, by both pipelines."""

import shutil

import pytest
import torch
from diffusers import AutoencoderTiny
from safetensors.torch import load_file, save_file

from fineface_ui import FineFacePipeline
from fineface_ui.engine.loading import load_preview_decoder
from fineface_ui.errors import CheckpointError
from fineface_ui.hub import weights
from fineface_ui.hub.model_sources import (
    DEFAULT_REPOS,
    MODEL_WEIGHTS_FILE,
    Weight,
    all_weights,
    identity_weights,
    preview_decoder_weight,
    text_weights,
)
from fineface_ui.standins.tiny_models import write_preview_decoder

TAESD = DEFAULT_REPOS["FINEFACE_PREVIEW_DECODER"]


@pytest.fixture
def taesd_copy(sd21_files, tmp_path):
    """A copy of the tiny TAESD folder, and its weights, for a test to damage."""
    folder = tmp_path / "taesd"
    shutil.copytree(sd21_files["preview_decoder"], folder)
    return folder, load_file(folder / MODEL_WEIGHTS_FILE)


def test_both_pipelines_load_the_same_taesd_by_default(monkeypatch):
    monkeypatch.delenv("FINEFACE_PREVIEW_DECODER")
    taesd = Weight("madebyollin/taesd", variable="FINEFACE_PREVIEW_DECODER")
    assert text_weights()["preview_decoder"] == identity_weights()["preview_decoder"] == taesd
    assert all_weights().count(taesd) == 1
    assert taesd.files() == ["config.json", "diffusion_pytorch_model.safetensors"]  # at the repo's root


def test_taesd_is_found_in_the_weights_folder_by_repo_id(sd21_files, tmp_path, monkeypatch):
    monkeypatch.delenv("FINEFACE_PREVIEW_DECODER")
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    shutil.copytree(sd21_files["preview_decoder"], tmp_path / TAESD)
    weight = preview_decoder_weight()
    assert weights.resolve([weight], allow_download=False) == {weight: tmp_path / TAESD}


def test_taesd_is_found_in_the_hugging_face_cache_with_its_revision(sd21_files, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("FINEFACE_PREVIEW_DECODER")
    monkeypatch.chdir(tmp_path)  # an empty ./weights
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_cache = tmp_path / "hub" / "models--madebyollin--taesd"
    shutil.copytree(sd21_files["preview_decoder"], repo_cache / "snapshots" / commit)
    (repo_cache / "refs").mkdir()
    (repo_cache / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    weight = preview_decoder_weight()
    path = weights.resolve([weight], allow_download=False)[weight]
    assert path == repo_cache / "snapshots" / commit
    assert weights.provenance(weight, path) == {"repo": TAESD, "revision": commit}


def test_the_pipeline_loads_taesd_in_its_own_device_and_dtype_and_records_it(sd21_pipe, sd21_files):
    decoder = sd21_pipe.preview_decoder
    assert isinstance(decoder, AutoencoderTiny)
    assert {(p.device, p.dtype) for p in decoder.parameters()} == {(sd21_pipe.device, sd21_pipe.dtype)}
    assert sd21_pipe.models["FINEFACE_PREVIEW_DECODER"] == {"repo": "taesd", "revision": "local"}


def test_the_identity_pipeline_loads_taesd_too(identity_pipe):
    assert isinstance(identity_pipe.preview_decoder, AutoencoderTiny)
    assert identity_pipe.models["FINEFACE_PREVIEW_DECODER"] == {"repo": "taesd", "revision": "local"}


def test_a_preview_decoder_folder_given_is_the_one_loaded(sd21_files, tmp_path):
    folder = write_preview_decoder(tmp_path / "my-taesd", seed=123)
    pipe = FineFacePipeline.from_pretrained(**{**sd21_files, "preview_decoder": folder}, device="cpu")
    released = load_file(folder / MODEL_WEIGHTS_FILE)
    loaded = pipe.preview_decoder.state_dict()
    assert loaded.keys() == released.keys()
    assert all(torch.equal(loaded[key], released[key]) for key in released)
    assert pipe.models["FINEFACE_PREVIEW_DECODER"] == {"repo": "my-taesd", "revision": "local"}


def test_the_studio_gives_both_pipelines_the_preview_decoder_it_is_given(sd21_files, sd15_files, tmp_path):
    from fineface_ui.studio import Studio

    fineface = tmp_path / "fineface"  # one FineFace folder serves both pipelines, as Tvaranka/fineface does
    for folder in (sd21_files["fineface_weights"], sd15_files["fineface_weights"]):
        shutil.copytree(folder, fineface, dirs_exist_ok=True)
    taesd = write_preview_decoder(tmp_path / "my-taesd", seed=7)
    studio = Studio.from_pretrained(device="cpu", base_model=sd21_files["base_model"], fineface_weights=fineface,
                                    sd15_base_model=sd15_files["base_model"], sd15_vae=sd15_files["vae"],
                                    ip_adapter_weights=sd15_files["ip_adapter_weights"], preview_decoder=taesd)
    for pipe in (studio.text_pipeline(), studio.identity_pipeline()):
        assert pipe.models["FINEFACE_PREVIEW_DECODER"] == {"repo": "my-taesd", "revision": "local"}


def test_a_taesd_missing_one_key_fails_loudly_naming_the_key(sd21_files, taesd_copy, tmp_path):
    folder, state = taesd_copy
    del state["decoder.layers.0.weight"]
    save_file(state, folder / MODEL_WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match=r"taesd/diffusion_pytorch_model.safetensors does not match .*"
                                              r"1 missing key\(s\), e.g. decoder.layers.0.weight") as error:
        FineFacePipeline.from_pretrained(**{**sd21_files, "preview_decoder": folder}, device="cpu")
    assert str(tmp_path) not in str(error.value)


def test_a_taesd_with_an_extra_key_fails_loudly_naming_it(taesd_copy):
    folder, state = taesd_copy
    state["decoder.layers.99.weight"] = torch.zeros(3)
    save_file(state, folder / MODEL_WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match=r"1 unexpected key\(s\), e.g. decoder.layers.99.weight"):
        load_preview_decoder(folder, torch.float32)


def test_a_truncated_taesd_says_it_is_corrupt_and_how_to_fix_it(taesd_copy, tmp_path):
    folder, _ = taesd_copy
    weights_file = folder / MODEL_WEIGHTS_FILE
    weights_file.write_bytes(weights_file.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"Cannot read taesd: it is corrupt or truncated .*--force") as error:
        load_preview_decoder(folder, torch.float32)
    assert str(tmp_path) not in str(error.value)


def test_the_separate_sd15_vae_has_every_key_checked_too(sd15_files, tmp_path):
    folder = tmp_path / "vae"
    shutil.copytree(sd15_files["vae"], folder)
    state = load_file(folder / MODEL_WEIGHTS_FILE)
    removed = sorted(state)[0]
    del state[removed]
    save_file(state, folder / MODEL_WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match=rf"vae/diffusion_pytorch_model.safetensors .*1 missing key.*{removed}"):
        FineFacePipeline.from_pretrained(**{**sd15_files, "vae": folder}, variant="sd15-identity", device="cpu")
