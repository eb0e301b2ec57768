"""Start-up, measured: a new process from its launch to its first image, once with an empty compile cache
and once with the cache that first start left (the app keeps it beside the weights, hub/weights.py).

`startup_rows` launches `python -m fineface_ui.bench.startup LAUNCHED [--tiny]` twice; the child builds the
SD 2.1 pipeline (random weights: full size on CUDA; `--tiny`, the test models on the CPU, compiled, to try
the script without a GPU), warms it up as the app does and renders one image, then prints its times as JSON.
Random weights are drawn on the device: reading the real 5 GB from disk is not in these times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..engine.acceleration import Acceleration
from ..settings import GenerationSettings
from .table import Row

START_TIMEOUT_S = 300


def app_acceleration(tiny: bool) -> Acceleration:
    """The app's options on CUDA; for the tiny CPU trial the same but CUDA graphs, which need a GPU."""
    default = Acceleration.default_for(torch.device("cuda"))
    return replace(default, cuda_graphs=False) if tiny else default


def text_pipeline(tiny: bool, folder: Path) -> Any:
    """The SD 2.1 pipeline, not yet accelerated: full size on CUDA, or the tiny test models (written to
    `folder`) on the CPU."""
    if tiny:
        from ..engine.pipeline import FineFacePipeline
        from ..standins.tiny_models import write_sd21_fineface

        return FineFacePipeline.from_pretrained(**write_sd21_fineface(folder), device="cpu",
                                                acceleration=Acceleration())
    from ..standins import full_size

    return full_size.text_pipeline("cuda", torch.float16)


def first_image(launched: float, tiny: bool) -> dict[str, float]:
    sync = (lambda: None) if tiny else torch.cuda.synchronize
    imported = time.time()
    with tempfile.TemporaryDirectory(prefix="fineface-bench-start-") as folder:
        pipe = text_pipeline(tiny, Path(folder))
        sync()
        built = time.time()
        pipe.accelerate(app_acceleration(tiny))
        warmed = time.time()
        pipe.generate(GenerationSettings.create("a portrait photo of a woman", {"AU12": 3}))
        sync()
        done = time.time()
    return {"imports_s": imported - launched, "build_s": built - imported, "warm_up_s": warmed - built,
            "first_image_s": done - warmed, "launch_to_image_s": done - launched}


def startup_rows(cache: Path, tiny: bool = False) -> list[Row]:
    """Two starts in new processes sharing the compile cache folder `cache` (empty at first)."""
    rows: list[Row] = []
    for start in ("cold (empty compile cache)", "warm (the cold start's cache)"):
        command = [sys.executable, "-m", "fineface_ui.bench.startup", str(time.time()), *(["--tiny"] * tiny)]
        # A start that hangs must not hold the GPU for the rest of the lease (a cold one takes about 2 min).
        done = subprocess.run(command, env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)},
                              capture_output=True, text=True, timeout=START_TIMEOUT_S)
        if done.returncode:
            raise RuntimeError(f"the {start} start failed:\n{done.stderr[-3000:]}")
        times = json.loads(done.stdout.splitlines()[-1])
        rows += [(f"start, {start}: launch to first image, s", times["launch_to_image_s"],
                  f"imports {times['imports_s']:.1f}, build {times['build_s']:.1f}, "
                  f"warm-up {times['warm_up_s']:.1f}, first image {times['first_image_s']:.2f}")]
    return rows


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    print(json.dumps(first_image(float(sys.argv[1]), "--tiny" in sys.argv[2:])))
