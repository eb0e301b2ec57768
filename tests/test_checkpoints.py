import pickle
import shutil

import pytest
import torch

from fineface_ui import FineFacePipeline
from fineface_ui.engine.checkpoints import read_state_dict
from fineface_ui.errors import CheckpointError


@pytest.fixture
def fineface_copy(sd21_files, tmp_path):
    folder = tmp_path / "fineface"
    shutil.copytree(sd21_files["fineface_weights"], folder)
    return folder


def load(sd21_files, folder):
    return FineFacePipeline.from_pretrained(sd21_files["base_model"], folder, device="cpu")


def test_a_missing_adapter_key_fails_loudly_naming_file_and_key(sd21_files, fineface_copy):
    path = fineface_copy / "attn_processors.ckpt"
    state = torch.load(path, weights_only=True)
    removed = sorted(state)[0]
    del state[removed]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=rf"attn_processors.ckpt.*1 missing key.*{removed}"):
        load(sd21_files, fineface_copy)


def test_an_extra_key_fails_loudly(sd21_files, fineface_copy):
    path = fineface_copy / "au_encoder.ckpt"
    state = torch.load(path, weights_only=True)
    state["au_encoder.extra"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"au_encoder.ckpt.*unexpected key.*au_encoder.extra"):
        load(sd21_files, fineface_copy)


def test_a_renamed_lora_key_fails_loudly(sd21_files, fineface_copy):
    from safetensors.torch import load_file, save_file

    path = fineface_copy / "pytorch_lora_weights.safetensors"
    state = load_file(path)
    key = next(k for k in state if k.endswith("to_q.lora_A.weight"))
    state[key.replace("to_q", "to_query")] = state.pop(key)
    save_file(state, path)
    with pytest.raises(CheckpointError, match=r"pytorch_lora_weights.safetensors.*missing key.*unexpected key"):
        load(sd21_files, fineface_copy)


def test_a_wrong_shape_fails_loudly(sd21_files, fineface_copy):
    path = fineface_copy / "au_encoder.ckpt"
    state = torch.load(path, weights_only=True)
    state["au_encoder.weight"] = torch.zeros(32, 12)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"au_encoder.weight is \[32, 12\], expected \[64, 12\]"):
        load(sd21_files, fineface_copy)


@pytest.mark.parametrize("name", ["attn_processors.ckpt", "pytorch_lora_weights.safetensors"])
def test_a_truncated_file_says_it_is_corrupt_and_how_to_fix_it(sd21_files, fineface_copy, name):
    path = fineface_copy / name
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=rf"Cannot read fineface/{name}: .*corrupt or truncated.*`fineface-ui download --force`"):
        load(sd21_files, fineface_copy)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickles_that_would_run_code_are_refused(tmp_path):
    path = tmp_path / "au_encoder.ckpt"
    path.write_bytes(pickle.dumps({"au_encoder.weight": Payload()}))
    with pytest.raises(CheckpointError, match="au_encoder.ckpt"):
        read_state_dict(path)
