"""Timing and printing helpers shared by the parts of the full-size GPU table."""

from __future__ import annotations

import io
import itertools
import statistics
import time
import traceback
from typing import Any, Callable, Iterator

import torch

from ..engine.acceleration import Acceleration

ALL_ON = Acceleration(channels_last=True, compile=True, cuda_graphs=True)
Row = tuple[str, float, str]  # what, value, a note


def row(*cells: Any) -> None:
    print("| " + " | ".join(f"{c:.2f}" if isinstance(c, float) else str(c) for c in cells) + " |", flush=True)


def timed_ms(run: Callable[[], Any], repeats: int, warm_ups: int = 2,
             sync: Callable[[], None] = torch.cuda.synchronize) -> list[float]:
    for _ in range(warm_ups):
        run()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    return times


def p50_p90(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), statistics.quantiles(times, n=10)[8]


def section(title: str) -> Callable:
    """Run one part of the table; a failure is printed and the next part still runs."""
    def wrap(part: Callable) -> Callable:
        def run(*args: Any) -> Any:
            print(f"\n## {title}\n", flush=True)
            try:
                return part(*args)
            except Exception as error:  # a measuring tool: report and go on
                traceback.print_exc()
                print(f"FAILED: {type(error).__name__}: {error}", flush=True)
        return run
    return wrap


def drag_values() -> Iterator[float]:
    """AU12 values as a drag gives them: each new, so nothing but the prompt's embeddings is a cache hit."""
    return (round(1 + index % 40 / 10, 1) for index in itertools.count())


def median_ms(run: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    return statistics.median(timed_ms(run, repeats, warm_ups=1, sync=sync))


def as_sent(image: Any) -> None:
    """A preview encoded as the page receives it: Gradio sends it as a JPEG."""
    image.save(io.BytesIO(), "JPEG")
