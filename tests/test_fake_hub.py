"""The fake Hub against the real huggingface_hub client: downloads, cache layout, and how each failure surfaces.

huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE when imported, and conftest.py forces offline mode in this
process, so every client call runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_hub import FakeHub, fake_sha

REPO = "fake-org/fineface-tiny"
# Enough to catch a retry loop with the client's default backoff (1+2+4+8+8 s), yet well above start-up time.
QUICK_S = 20

# Runs before each snippet: `attempt` reports the outcome of one client call as JSON instead of raising.
PRELUDE = """
import json, sys, time
from huggingface_hub import HfApi, hf_hub_download, snapshot_download

def attempt(fn, *args, **kwargs):
    start = time.monotonic()
    try:
        value, error = fn(*args, **kwargs), None
    except Exception as e:
        value, error = None, e
    cause = error.__cause__ if error is not None else None
    response = getattr(error, "response", None) or getattr(cause, "response", None)
    print(json.dumps({
        "value": value,
        "error": [c.__name__ for c in type(error).__mro__] if error else None,
        "cause": type(cause).__name__ if cause else None,
        "status": getattr(response, "status_code", None),
        "seconds": time.monotonic() - start,
    }))
"""


@pytest.fixture
def repo_dir(tmp_path) -> Path:
    root = tmp_path / "repo"
    files = {
        "model_index.json": b'{"_class_name": "Tiny"}',
        "README.md": b"# tiny\n",
        "unet/config.json": b'{"sample_size": 8}',
        # Above the fake hub's LFS threshold: served through the 302-to-CDN path, like real weights.
        "unet/diffusion_pytorch_model.safetensors": os.urandom(20_000),
        "text_encoder/model.safetensors": os.urandom(3_000),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture
def hub(repo_dir):
    with FakeHub({REPO: repo_dir}) as hub:
        yield hub


def client(hub: FakeHub, hf_home: Path, code: str) -> list[dict]:
    """Run `code` in a fresh interpreter pointed at `hub`; one dict per `attempt(...)` call, in order."""
    done = subprocess.run([sys.executable, "-c", PRELUDE + code], env=hub.client_env(hf_home),
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_hf_hub_download_is_byte_identical_and_cached_under_the_fake_sha(hub, repo_dir, tmp_path):
    small, lfs = "unet/config.json", "unet/diffusion_pytorch_model.safetensors"
    results = client(hub, tmp_path / "hf", f"attempt(hf_hub_download, {REPO!r}, {small!r})\n"
                                           f"attempt(hf_hub_download, {REPO!r}, {lfs!r})")

    snapshot = tmp_path / "hf" / "hub" / "models--fake-org--fineface-tiny" / "snapshots" / fake_sha(REPO)
    for name, result in zip((small, lfs), results):
        assert result["error"] is None
        assert Path(result["value"]) == snapshot / name
        assert Path(result["value"]).read_bytes() == (repo_dir / name).read_bytes()
    assert (snapshot.parent.parent / "refs" / "main").read_text() == fake_sha(REPO)
    paths = [path for _, path in hub.requests]
    assert paths.count(f"/{REPO}/resolve/main/{lfs}") == 1  # HEAD answered 302; the GET went to the "CDN"
    assert any(path.startswith("/lfs/") for path in paths)


def test_snapshot_download_fetches_exactly_the_allowed_files(hub, tmp_path):
    (result,) = client(hub, tmp_path / "hf", f"attempt(snapshot_download, {REPO!r}, "
                                              "allow_patterns=['unet/*', '*.json'])")

    folder = Path(result["value"])
    assert folder.name == fake_sha(REPO)
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert got == ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors"]


@pytest.mark.parametrize(
    "call, expected, status",
    [
        ("hf_hub_download, 'nobody/missing', 'model_index.json'", "RepositoryNotFoundError", 404),
        ("snapshot_download, 'nobody/missing'", "RepositoryNotFoundError", 404),
        ("hf_hub_download, 'fake-org/gated', 'model_index.json'", "GatedRepoError", 401),
        ("snapshot_download, 'fake-org/gated'", "GatedRepoError", 401),
        (f"hf_hub_download, {REPO!r}, 'no/such/file.bin'", "RemoteEntryNotFoundError", 404),
        (f"hf_hub_download, {REPO!r}, 'model_index.json', revision='v9'", "RevisionNotFoundError", 404),
    ],
)
def test_client_errors_raise_the_hub_exception_without_retrying(repo_dir, tmp_path, call, expected, status):
    with FakeHub({REPO: repo_dir}, gated={"fake-org/gated"}) as hub:
        (result,) = client(hub, tmp_path / "hf", f"attempt({call})")

    assert expected in result["error"] and "HfHubHTTPError" in result["error"]
    assert result["status"] == status
    assert len(hub.requests) == 1
    assert result["seconds"] < QUICK_S
    print(f"{call}: {result['error'][0]} in {result['seconds']:.2f}s")


def test_missing_file_is_also_an_entry_not_found_error(hub, tmp_path):
    (result,) = client(hub, tmp_path / "hf", f"attempt(hf_hub_download, {REPO!r}, 'nope.txt')")
    assert "EntryNotFoundError" in result["error"]


def test_persistent_5xx_reaches_the_caller_after_the_clients_retries(repo_dir, tmp_path):
    with FakeHub({REPO: repo_dir}, server_errors={REPO}, error_status=503) as hub:
        download, snapshot, info = client(hub, tmp_path / "hf", f"attempt(hf_hub_download, {REPO!r}, 'README.md')\n"
                                                                 f"attempt(snapshot_download, {REPO!r})\n"
                                                                 f"attempt(HfApi().model_info, {REPO!r})")

    # hf_hub_download: one HEAD, then a retrying round of 6 (sleeping Retry-After + 1 = 1 s between them);
    # the 5xx is the cause of a LocalEntryNotFoundError ("no connection and not in the cache").
    assert download["error"][0] == "LocalEntryNotFoundError"
    assert (download["cause"], download["status"]) == ("HfHubHTTPError", 503)
    # snapshot_download and model_info ask the API once, with no retry.
    assert snapshot["error"][0] == "LocalEntryNotFoundError"
    assert (snapshot["cause"], snapshot["status"]) == ("HfHubHTTPError", 503)
    assert info["error"][0] == "HfHubHTTPError" and info["status"] == 503
    assert [path.split("?")[0] for _, path in hub.requests] == (
        [f"/{REPO}/resolve/main/README.md"] * 7 + [f"/api/models/{REPO}/revision/main", f"/api/models/{REPO}"]
    )
    for result in (download, snapshot, info):
        assert result["seconds"] < QUICK_S
    print(f"5xx: hf_hub_download {download['seconds']:.2f}s, snapshot_download {snapshot['seconds']:.2f}s")


def test_a_transient_5xx_on_one_file_is_retried_and_the_download_succeeds(repo_dir, tmp_path):
    name = "unet/config.json"
    with FakeHub({REPO: repo_dir}, server_errors={(REPO, name)}, errors_left=1) as hub:
        (result,) = client(hub, tmp_path / "hf", f"attempt(hf_hub_download, {REPO!r}, {name!r})")

    assert result["error"] is None
    assert Path(result["value"]).read_bytes() == (repo_dir / name).read_bytes()
    assert hub.requests == [("HEAD", f"/{REPO}/resolve/main/{name}")] * 2 + [("GET", f"/{REPO}/resolve/main/{name}")]
    assert result["seconds"] < 1  # the client's retrying round starts without sleeping
