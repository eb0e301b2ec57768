"""`fineface-ui download` and the loaders against a fake Hub: the real huggingface_hub client
downloads the tiny models in the Hub's layout, and every way the Hub can fail is a message.

Each command runs in a fresh interpreter (huggingface_hub reads HF_ENDPOINT when imported) with an
empty Hugging Face cache and its own weights folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fineface_ui.hub.model_sources import DEFAULT_REPOS, PACK_NAME
from fineface_ui.png_info import read_settings
from fineface_ui.standins.tiny_au_reader import write_au_reader
from fineface_ui.standins.tiny_face_models import write_model_pack
from tests.fake_hub import FakeHub, fake_sha

SD21_BASE = DEFAULT_REPOS["FINEFACE_BASE_MODEL"]
FINEFACE = DEFAULT_REPOS["FINEFACE_WEIGHTS"]
IP_ADAPTER = DEFAULT_REPOS["FINEFACE_IP_ADAPTER"]
TAESD = DEFAULT_REPOS["FINEFACE_PREVIEW_DECODER"]
MAGICFACE = DEFAULT_REPOS["FINEFACE_MAGICFACE"]
READER = {"FINEFACE_AU_READER": "weights/au_reader.onnx"}  # relative to the workdir, where commands run


@pytest.fixture(scope="module")
def hub_repos(sd21_files, sd15_files, magicface_files, tmp_path_factory) -> dict[str, Path]:
    """Each default repo id -> a folder with the tiny models' files under the real names."""
    fineface = tmp_path_factory.mktemp("fineface-repo")
    for folder in (sd21_files["fineface_weights"], sd15_files["fineface_weights"]):
        shutil.copytree(folder, fineface, dirs_exist_ok=True)
    return {
        SD21_BASE: sd21_files["base_model"],
        FINEFACE: fineface,
        DEFAULT_REPOS["FINEFACE_SD15_BASE_MODEL"]: sd15_files["base_model"],
        DEFAULT_REPOS["FINEFACE_SD15_VAE"]: sd15_files["vae"],
        IP_ADAPTER: sd15_files["ip_adapter_weights"],
        TAESD: sd21_files["preview_decoder"],
        MAGICFACE: magicface_files["magicface_weights"],
        DEFAULT_REPOS["FINEFACE_MAGICFACE_BASE_MODEL"]: magicface_files["base_model"],
    }


@pytest.fixture
def workdir(tmp_path) -> Path:
    """The folder commands run in: its weights/ already holds the face pack and an AU reader (both on GitHub)."""
    write_model_pack(tmp_path / "weights" / "insightface")
    write_au_reader(tmp_path / "weights" / "au_reader.onnx")
    assert (tmp_path / "weights" / "insightface" / "models" / PACK_NAME).is_dir()
    return tmp_path


def fineface_ui(hub: FakeHub, workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fineface_ui", *args], cwd=workdir, capture_output=True,
                          text=True, timeout=300, env=hub.client_env(workdir / "hf", **{**READER, **env}))


def assert_fails_with(done: subprocess.CompletedProcess, *phrases: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for phrase in phrases:
        assert phrase in done.stderr
    assert str(Path.cwd()) not in done.stderr and "/tmp/" not in done.stderr  # no server paths


def test_download_fills_the_cache_and_generate_then_runs_offline_from_it(hub_repos, workdir):
    with FakeHub(hub_repos) as hub:
        done = fineface_ui(hub, workdir, "download")
        assert done.returncode == 0, done.stderr
        assert f"ok  au_encoder.ckpt from {FINEFACE}: {FINEFACE}/au_encoder.ckpt" in done.stdout
        out = workdir / "face.png"
        made = fineface_ui(hub, workdir, "generate", "--prompt", "a face", "--au", "AU12=2", "--steps", "2",
                           "--height", "256", "--width", "256", "--device", "cpu", "--out", str(out),
                           HF_HUB_OFFLINE="1")
    assert made.returncode == 0, made.stderr
    models = read_settings(out)["models"]
    assert models["FINEFACE_BASE_MODEL"] == {"repo": SD21_BASE, "revision": fake_sha(SD21_BASE)}
    assert models["FINEFACE_WEIGHTS"] == {"repo": FINEFACE, "revision": fake_sha(FINEFACE)}
    assert models["FINEFACE_PREVIEW_DECODER"] == {"repo": TAESD, "revision": fake_sha(TAESD)}


def test_download_fetches_the_photo_edits_models_and_an_edit_then_runs_offline(hub_repos, workdir):
    from tests.app_fixtures import face_picture

    photo = face_picture(workdir / "me.png")
    with FakeHub(hub_repos) as hub:
        assert fineface_ui(hub, workdir, "download").returncode == 0
        out = workdir / "edited.png"
        made = fineface_ui(hub, workdir, "edit", str(photo), "--set", "AU12=4", "--steps", "1", "--device", "cpu",
                           "--out", str(out), HF_HUB_OFFLINE="1")
    assert made.returncode == 0, made.stderr
    models = read_settings_of_edit(out)["models"]
    assert models["FINEFACE_MAGICFACE"] == {"repo": MAGICFACE, "revision": fake_sha(MAGICFACE)}
    base = DEFAULT_REPOS["FINEFACE_MAGICFACE_BASE_MODEL"]
    assert models["FINEFACE_MAGICFACE_BASE_MODEL"] == {"repo": base, "revision": fake_sha(base)}


def read_settings_of_edit(path: Path) -> dict:
    import json

    from PIL import Image

    with Image.open(path) as image:
        return json.loads(image.info["fineface"])


def test_a_repository_that_does_not_exist_is_named_with_the_variable_to_change(hub_repos, workdir):
    with FakeHub(hub_repos) as hub:
        done = fineface_ui(hub, workdir, "download", FINEFACE_BASE_MODEL="gone/stable-diffusion-2-1-base")
    assert_fails_with(done, "gone/stable-diffusion-2-1-base was not found", "FINEFACE_BASE_MODEL")


def test_a_gated_repository_says_to_accept_the_licence_and_log_in(hub_repos, workdir):
    with FakeHub(hub_repos, gated={FINEFACE}) as hub:
        done = fineface_ui(hub, workdir, "download")
    assert_fails_with(done, f"{FINEFACE} is gated", "accept its licence", "hf auth login", "HF_TOKEN")


def test_a_file_missing_from_a_repository_names_both(hub_repos, workdir, tmp_path):
    without_encoder = tmp_path / "fineface-without-encoder"
    shutil.copytree(hub_repos[FINEFACE], without_encoder)
    (without_encoder / "au_encoder.ckpt").unlink()
    with FakeHub({**hub_repos, FINEFACE: without_encoder}) as hub:
        done = fineface_ui(hub, workdir, "download")
    assert_fails_with(done, f"The repository {FINEFACE} has no file au_encoder.ckpt", "FINEFACE_WEIGHTS")


def test_a_file_missing_from_a_model_repository_is_named_not_skipped(hub_repos, workdir, tmp_path):
    without_unet = tmp_path / "sd21-without-unet"
    shutil.copytree(hub_repos[SD21_BASE], without_unet)
    (without_unet / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with FakeHub({**hub_repos, SD21_BASE: without_unet}) as hub:
        done = fineface_ui(hub, workdir, "download")
    assert_fails_with(done, f"The repository {SD21_BASE} has no file unet/diffusion_pytorch_model.safetensors",
                      "FINEFACE_BASE_MODEL")


def test_a_refusal_is_not_called_temporary(hub_repos, workdir):
    with FakeHub(hub_repos, server_errors={IP_ADAPTER}, error_status=403) as hub:
        done = fineface_ui(hub, workdir, "download")
    assert_fails_with(done, "refused it (HTTP 403)", "HF_TOKEN")
    assert "try again" not in done.stderr


def test_a_server_error_says_it_is_the_hub_and_to_try_again(hub_repos, workdir):
    with FakeHub(hub_repos, server_errors={IP_ADAPTER}, error_status=503, retry_after=0) as hub:
        done = fineface_ui(hub, workdir, "download")
    assert_fails_with(done, "the Hugging Face Hub", "answered HTTP 503", "try again")


def test_a_truncated_file_in_the_cache_is_named_and_download_force_repairs_it(hub_repos, workdir):
    generate = ("generate", "--steps", "1", "--height", "256", "--width", "256", "--device", "cpu",
                "--out", str(workdir / "x.png"))
    with FakeHub(hub_repos) as hub:
        assert fineface_ui(hub, workdir, "download").returncode == 0
        (cached,) = (workdir / "hf").rglob("snapshots/*/au_encoder.ckpt")
        blob = cached.resolve()
        blob.write_bytes(blob.read_bytes()[:100])
        broken = fineface_ui(hub, workdir, *generate, HF_HUB_OFFLINE="1")
        assert_fails_with(broken, f"Cannot read {FINEFACE}/au_encoder.ckpt", "fineface-ui download --force")
        assert fineface_ui(hub, workdir, "download", "--force").returncode == 0
        repaired = fineface_ui(hub, workdir, *generate, HF_HUB_OFFLINE="1")
    assert repaired.returncode == 0, repaired.stderr


def test_the_web_app_does_not_start_on_a_hub_failure_and_says_why(hub_repos, workdir):
    with FakeHub(hub_repos, gated={SD21_BASE}) as hub:
        done = subprocess.run([sys.executable, str(Path(__file__).parent.parent / "app.py"), "--port", "0"],
                              cwd=workdir, capture_output=True, text=True, timeout=300,
                              env=hub.client_env(workdir / "hf"))
    assert_fails_with(done, "Cannot start FineFace UI", f"{SD21_BASE} is gated")


def test_the_au_reader_comes_from_the_hub_repo_its_variable_names(hub_repos, workdir, tmp_path):
    from fineface_ui.hub.model_sources import AU_READER
    from tests.app_fixtures import face_picture

    mirror = tmp_path / "reader-mirror"
    write_au_reader(mirror / AU_READER.filename)
    face_picture(workdir / "me.png")
    with FakeHub({**hub_repos, "someone/libreface-mirror": mirror}) as hub:
        done = fineface_ui(hub, workdir, "read-aus", "me.png", "--json", FINEFACE_AU_READER="someone/libreface-mirror")
        assert ("GET", f"/someone/libreface-mirror/resolve/main/{AU_READER.filename}") in hub.requests
    assert done.returncode == 0, done.stderr
    assert '"AU12"' in done.stdout and '"faces_found": 1' in done.stdout


def test_download_eval_also_fetches_the_evaluations_clip_and_plain_download_does_not(hub_repos, workdir, tmp_path):
    from fineface_ui.standins.tiny_clip import write_tiny_clip

    clip = DEFAULT_REPOS["FINEFACE_CLIP"]
    repos = {**hub_repos, clip: write_tiny_clip(tmp_path / "clip-repo")}
    with FakeHub(repos) as hub:
        plain = fineface_ui(hub, workdir, "download")
        assert plain.returncode == 0, plain.stderr
        assert clip not in plain.stdout
        assert f"absent  the model {clip}" in fineface_ui(hub, workdir, "doctor").stdout
        done = fineface_ui(hub, workdir, "download", "--eval")
        assert done.returncode == 0, done.stderr
        assert f"found   the model {clip}" in fineface_ui(hub, workdir, "doctor").stdout
    assert f"ok  the model {clip} (config.json, model.safetensors, preprocessor_config.json): {clip}" in done.stdout
