"""Work shared between the processes `accelerate launch` starts (one per GPU), and kept on disk so that a
run stopped at any point resumes where it was.

Each process appends the rows of what it finished to its own part file; what is in any part file is done
and is never made again; the main process merges the parts once every process is through. Run without a
launcher, it is one process doing all of it.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Sequence, TypeVar

import torch

Item = TypeVar("Item")
PARTS = "parts"  # the folder of the part files, inside the output folder
# Processes wait for each other only between phases; a phase of thousands of images outlasts
# torch.distributed's default ten-minute timeout.
WAIT_LIMIT = timedelta(days=2)


class Workers:
    """This process's place among those launched: its rank, its device, its share of a list of work."""

    def __init__(self) -> None:
        from accelerate import PartialState

        # Without a GPU, Accelerate shares work between processes only when told they are CPU processes.
        on_cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true"
        self.state = PartialState(cpu=on_cpu, timeout=WAIT_LIMIT)

    @property
    def rank(self) -> int:
        return self.state.process_index

    @property
    def count(self) -> int:
        return self.state.num_processes

    @property
    def is_main(self) -> bool:
        return self.state.is_main_process

    @property
    def device(self) -> torch.device:
        return self.state.device

    def share(self, items: Sequence[Item]) -> list[Item]:
        """This process's part of `items` (every process must pass the same list)."""
        with self.state.split_between_processes(list(items)) as part:
            return list(part)

    def wait(self) -> None:
        """Until every process has reached this point."""
        self.state.wait_for_everyone()


def part_file(folder: Path, stem: str, rank: int) -> Path:
    return Path(folder) / PARTS / f"{stem}-{rank}.jsonl"


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Add rows to a part file in one write, flushed to disk: a row there means its work is done."""
    text = "".join(json.dumps(row) + "\n" for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def read_rows(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every complete row of these JSON-lines files; a line cut off by a stopped process is dropped (its work
    is then done again)."""
    rows = []
    for path in paths:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def rows_so_far(folder: Path, stem: str) -> list[dict[str, Any]]:
    """The rows of the merged file `<stem>.jsonl` and of every part file not merged yet (from any number of
    processes: a resumed run may be launched with another count)."""
    return read_rows([Path(folder) / f"{stem}.jsonl", *sorted((Path(folder) / PARTS).glob(f"{stem}-*.jsonl"))])


def merge_rows(folder: Path, stem: str, key: str, order: Sequence[Any]) -> list[dict[str, Any]]:
    """Write `<stem>.jsonl` with every row so far, one per `key`, in `order`; then drop the parts."""
    # The newest row of a key wins: parts come after the merged file, and a row is only written again when
    # its work was done again.
    by_key = {row[key]: row for row in rows_so_far(folder, stem)}
    position = {name: index for index, name in enumerate(order)}
    rows = sorted(by_key.values(), key=lambda row: position.get(row[key], len(position)))
    merged = Path(folder) / f"{stem}.jsonl"
    temporary = merged.with_suffix(".jsonl.tmp")
    temporary.write_text("".join(json.dumps(row) + "\n" for row in rows))
    temporary.replace(merged)  # a run stopped while merging keeps the old file and the parts
    parts = Path(folder) / PARTS
    for part in parts.glob(f"{stem}-*.jsonl"):
        part.unlink()
    if parts.is_dir() and not any(parts.iterdir()):
        parts.rmdir()
    return rows
