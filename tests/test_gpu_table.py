"""The GPU table runs where the GPU is lent: a machine with PyTorch but without the web app's packages."""

import subprocess
import sys

# What the device machine lacks of requirements.txt (its image holds PyTorch and the scientific stack; the
# benchmark's own needs, diffusers, InsightFace and PyAV, travel with it as wheels: docs/benchmarks.md).
ABSENT_THERE = ("gradio", "spaces")


def test_the_gpu_table_and_every_part_it_runs_import_without_the_web_app_packages():
    code = (f"import sys\nfor name in {ABSENT_THERE!r}:\n    sys.modules[name] = None\n"
            "from fineface_ui.bench import gpu_table, editing, evaluation, motion, reading, startup\n"
            "from fineface_ui.bench.__main__ import main\n"
            "from fineface_ui.standins import full_size_clip\n"
            "main(['--full-size', '--tiny', '--parts', 'reading'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| read one 512x512 image, warm, ms |" in done.stdout
    assert "FAILED" not in done.stdout
