"""What the install produces: one ONNX Runtime build, the `fineface-ui` command, a package that imports light."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement


def installed(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def test_exactly_one_onnxruntime_build_is_installed():
    builds = {name: installed(name) for name in ("onnxruntime", "onnxruntime-gpu")}
    assert sum(v is not None for v in builds.values()) == 1, builds


def test_the_imported_onnxruntime_is_the_installed_build_in_the_version_the_package_requires():
    import onnxruntime

    (build,) = [name for name in ("onnxruntime", "onnxruntime-gpu") if installed(name)]
    (required,) = [Requirement(line) for line in requires("fineface-ui") if line.startswith("onnxruntime")]
    # install.sh puts the GPU build in place of the CPU one: same module, same version bounds.
    assert onnxruntime.__version__ == installed(build), "the module's files come from another wheel"
    assert required.specifier.contains(onnxruntime.__version__), (build, onnxruntime.__version__, str(required))


def test_the_face_models_run_on_the_first_provider_the_embedder_picks():
    import onnxruntime
    import torch

    from fineface_ui.faces.embedder import default_providers
    from fineface_ui.standins.tiny_face_models import build_recognizer

    picked = default_providers()
    assert set(picked) <= set(onnxruntime.get_available_providers())
    if torch.cuda.is_available():  # where the pipelines run on CUDA, the face models must too
        assert installed("onnxruntime-gpu") and picked[0] == "CUDAExecutionProvider"
    session = onnxruntime.InferenceSession(build_recognizer().SerializeToString(), providers=picked)
    # ONNX Runtime falls back to the CPU, with only a log line, when CUDA's libraries do not load.
    assert session.get_providers()[0] == picked[0]


HEAVY = ("torch", "diffusers", "transformers", "gradio", "cv2", "onnxruntime", "insightface", "huggingface_hub")


def imported_by(code: str, cwd) -> list[str]:
    """Which heavy modules a fresh interpreter has imported after running `code`."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import fineface_ui",
    "from fineface_ui.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass",
    *(f"from fineface_ui.cli import main\ntry: main([{command!r}, '--help'])\nexcept SystemExit: pass"
      for command in ("generate", "read-aus", "eval", "batch", "download", "doctor", "serve")),
    "from fineface_ui.web.server import main\ntry: main(['--help'])\nexcept SystemExit: pass",
])
def test_importing_the_package_and_every_help_load_no_model_library(code, tmp_path):
    assert imported_by(code, cwd=tmp_path) == []  # tmp_path: the installed package, not the checkout


def test_the_install_provides_the_console_script_and_the_page_styles():
    from importlib.metadata import entry_points
    from importlib.resources import files

    (script,) = entry_points(group="console_scripts", name="fineface-ui")
    assert script.value == "fineface_ui.cli:main"
    assert (files("fineface_ui.web") / "assets" / "fineface.css").read_text().strip()


def test_the_console_script_runs_from_another_folder(tmp_path):
    script = Path(sys.executable).with_name("fineface-ui")
    done = subprocess.run([str(script), "serve", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--random-weights" in done.stdout


def test_gradio_server_variables_set_host_and_port_unless_given(monkeypatch):
    from fineface_ui.web import server

    def parse(*argv):
        return server.add_arguments(argparse.ArgumentParser()).parse_args(argv)

    monkeypatch.setenv("GRADIO_SERVER_PORT", "8123")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    assert (parse().host, parse().port) == ("0.0.0.0", 8123)
    assert (parse("--host", "127.0.0.1", "--port", "9000").host, parse("--port", "9000").port) == ("127.0.0.1", 9000)
    monkeypatch.delenv("GRADIO_SERVER_PORT")
    monkeypatch.delenv("GRADIO_SERVER_NAME")
    assert (parse().host, parse().port) == ("127.0.0.1", 7860)


def test_the_wheel_holds_every_module_the_page_assets_the_au_map_and_the_evaluations_combinations(tmp_path):
    # Built from a copy, so that the build's own folders stay out of the checkout.
    root = Path(__file__).resolve().parent.parent
    source = tmp_path / "source"
    for name in ("fineface_ui", "assets"):
        shutil.copytree(root / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(root / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", str(source), "-w", str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(path.relative_to(root)) for path in (root / "fineface_ui").rglob("*.py")}
    pictures = {"fineface_ui/assets/au_map.svg", "fineface_ui/evaluation/combinations.json"}
    page_assets = {str(path.relative_to(root)) for path in (root / "fineface_ui" / "web" / "assets").iterdir()}
    assert modules | pictures | page_assets <= names

    # Installed from the wheel, away from the checkout, the page finds the AU map inside the package.
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True,
                   timeout=300)
    probe = ("import fineface_ui; from fineface_ui.web.ui import au_map_svg\n"
             "from fineface_ui.evaluation.protocol import combinations; assert len(combinations()) == 50\n"
             "print(fineface_ui.__file__, au_map_svg())")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(tmp_path / "site")) and 'id="AU12"' in done.stdout
