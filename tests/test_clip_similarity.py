"""CLIP-I's image encoder: found like every other model, loaded with every key checked, and its similarity."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load, save_file

from fineface_ui.errors import CheckpointError, MissingWeightsError
from fineface_ui.evaluation import clip_similarity
from fineface_ui.evaluation.clip_similarity import WEIGHTS_FILE, ClipImageEncoder, clip_i
from fineface_ui.hub import weights
from fineface_ui.hub.model_sources import DEFAULT_REPOS, all_weights, clip_weight
from fineface_ui.standins.tiny_clip import PROJECTION_DIM, write_tiny_clip

CLIP = DEFAULT_REPOS["FINEFACE_CLIP"]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return write_tiny_clip(tmp_path_factory.mktemp("clip") / "clip")


@pytest.fixture(scope="module")
def encoder(clip_folder):
    return ClipImageEncoder.from_folder(clip_folder, "cpu")


@pytest.fixture
def clip_copy(clip_folder, tmp_path):
    """A copy of the tiny CLIP folder, and its weights, for a test to damage."""
    folder = tmp_path / "clip"
    shutil.copytree(clip_folder, folder)
    # Read into memory, not mapped (load_file): tensors mapped from a file a test then truncates crash the
    # process with a bus error as soon as pytest prints them.
    return folder, load((folder / WEIGHTS_FILE).read_bytes())


def noise(seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_an_image_is_fully_similar_to_itself_and_less_to_another(encoder):
    embeddings = encoder.embed([noise(0), noise(0), noise(1)])
    assert embeddings.shape == (3, PROJECTION_DIM) and embeddings.dtype == torch.float32
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(3), atol=1e-6)
    itself, other = clip_i(embeddings[0], embeddings[1:])
    assert itself == pytest.approx(1.0, abs=1e-5)
    assert other < 1 - 1e-4


def test_embeddings_are_deterministic_whatever_the_batching(encoder, clip_folder, monkeypatch):
    images = [noise(seed) for seed in range(5)]
    once = encoder.embed(images)
    assert torch.equal(once, encoder.embed(images))
    monkeypatch.setattr(clip_similarity, "BATCH_SIZE", 2)
    assert torch.allclose(once, encoder.embed(images), atol=1e-6)
    assert torch.allclose(once, ClipImageEncoder.from_folder(clip_folder, "cpu").embed(images), atol=1e-6)
    assert encoder.embed([]).shape == (0, PROJECTION_DIM)


def test_the_stand_in_is_the_same_bytes_in_another_process(clip_folder, tmp_path):
    code = "import sys; from fineface_ui.standins.tiny_clip import write_tiny_clip; write_tiny_clip(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "again")], check=True)
    for name in clip_weight().files():
        assert (tmp_path / "again" / name).read_bytes() == (clip_folder / name).read_bytes()


def test_the_text_side_keys_of_the_real_layout_are_accepted(clip_copy):
    folder, state = clip_copy
    assert {"logit_scale", "text_projection.weight", "text_model.final_layer_norm.weight"} <= set(state)
    # Checkpoints converted before transformers made position_ids non-persistent still hold them.
    state["text_model.embeddings.position_ids"] = torch.arange(16)[None]
    state["vision_model.embeddings.position_ids"] = torch.arange(17)[None]
    save_file(state, folder / WEIGHTS_FILE)
    loaded = ClipImageEncoder.from_folder(folder, "cpu").model.state_dict()
    assert set(loaded) <= set(state)
    assert all(torch.equal(loaded[key], state[key]) for key in loaded)


def test_a_missing_vision_key_fails_naming_it(clip_copy, tmp_path):
    folder, state = clip_copy
    del state["vision_model.post_layernorm.weight"]
    save_file(state, folder / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match=r"clip/model.safetensors does not match .*1 missing key\(s\), "
                                              r"e.g. vision_model.post_layernorm.weight") as error:
        ClipImageEncoder.from_folder(folder, "cpu")
    assert str(tmp_path) not in str(error.value)


def test_an_extra_key_outside_the_text_side_fails_naming_it(clip_copy):
    folder, state = clip_copy
    state["vision_model.head.weight"] = torch.zeros(3)
    save_file(state, folder / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match=r"1 unexpected key\(s\), e.g. vision_model.head.weight"):
        ClipImageEncoder.from_folder(folder, "cpu")


def test_a_misshapen_key_fails_naming_it(clip_copy):
    folder, state = clip_copy
    state["visual_projection.weight"] = torch.zeros(PROJECTION_DIM, 8)
    save_file(state, folder / WEIGHTS_FILE)
    expected = (r"clip/model.safetensors does not match its config.json: 1 wrong shape\(s\): "
                r"visual_projection.weight is \[16, 8\], expected \[16, 32\]")
    with pytest.raises(CheckpointError, match=expected):
        ClipImageEncoder.from_folder(folder, "cpu")


@pytest.mark.parametrize("name", [WEIGHTS_FILE, "preprocessor_config.json"])
def test_a_truncated_file_says_it_is_corrupt_and_how_to_fix_it(clip_copy, tmp_path, name):
    folder, _ = clip_copy
    (folder / name).write_bytes((folder / name).read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"Cannot read clip: it is corrupt or truncated .*--force") as error:
        ClipImageEncoder.from_folder(folder, "cpu")
    assert str(tmp_path) not in str(error.value)


def test_clip_is_its_own_weight_with_the_three_files_of_its_repo(monkeypatch):
    monkeypatch.delenv("FINEFACE_CLIP", raising=False)
    weight = clip_weight()
    assert (weight.repo, weight.variable) == (CLIP, "FINEFACE_CLIP")
    assert weight.files() == weight.files(patterns=True) == ["config.json", "model.safetensors",
                                                             "preprocessor_config.json"]
    assert weight not in all_weights()  # the app never loads it, so the Space does not preload it


def test_a_folder_given_as_repo_loads_without_the_network(encoder, clip_folder):
    loaded = ClipImageEncoder.from_pretrained(clip_folder, device="cpu")
    assert loaded.source == {"repo": "clip", "revision": "local"}
    assert torch.equal(loaded.embed([noise(0)]), encoder.embed([noise(0)]))


def test_the_weights_folder_copy_is_recorded_by_repo_id(clip_folder, tmp_path, monkeypatch):
    monkeypatch.delenv("FINEFACE_CLIP", raising=False)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    shutil.copytree(clip_folder, tmp_path / CLIP)
    assert ClipImageEncoder.from_pretrained(device="cpu").source == {"repo": CLIP, "revision": "local"}


def test_a_folder_lacking_a_file_is_named_as_missing(clip_copy, monkeypatch):
    folder, _ = clip_copy
    (folder / "preprocessor_config.json").unlink()
    monkeypatch.setenv("FINEFACE_CLIP", str(folder))
    with pytest.raises(MissingWeightsError, match=r"clip, which lacks preprocessor_config.json"):
        ClipImageEncoder.from_pretrained(device="cpu")
