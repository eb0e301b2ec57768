"""Work shared between the processes `accelerate launch` starts (one per GPU), and kept on disk so that a
run stopped at any point resumes where it was.

Each process appends the rows of what it finished to its own part file: a row written means its work is
done and is not made again. The main process merges the parts into one file at the start of a phase (what
a stopped run left) and once every process is through. Run without a launcher, it is one process doing
all of it.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import torch

Item = TypeVar("Item")
PARTS = "parts"  # the folder of the part files, inside the output folder
# Processes wait for each other only between phases; a phase of thousands of images outlasts
# torch.distributed's default ten-minute timeout.
WAIT_LIMIT = timedelta(days=2)


class Workers:
    """This process's place among those Accelerate launched (its PartialState): its rank, its device, its share
    of a list of work."""

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

    def share(self, items: Sequence[Item], size: Callable[[Item], int] = lambda item: 1) -> list[Item]:
        """This process's part of `items` (every process must pass the same list)."""
        return share_of(items, self.rank, self.count, size)

    def wait(self) -> None:
        """Until every process has reached this point."""
        self.state.wait_for_everyone()

    def gather(self, items: list[Item]) -> list[Item]:
        """Every process's `items`, one list, in every process."""
        from accelerate.utils import gather_object

        return gather_object(items)

    def rows_at_start(self, folder: Path, stem: str, key: str, order: Sequence[Any]) -> list[dict[str, Any]]:
        """The rows done before this phase, the same in every process. The main process first merges what an
        earlier run left in part files: from here on the parts hold only this run's rows, so a row made again
        comes after (and wins over) its old one."""
        if self.is_main:
            merge_rows(folder, stem, key, order)
        self.wait()
        rows = read_rows([Path(folder) / f"{stem}.jsonl"])
        self.wait()  # every process has read them before any writes more
        return rows


def share_of(items: Sequence[Item], rank: int, count: int, size: Callable[[Item], int]) -> list[Item]:
    """Process `rank`'s part of `items` among `count`: each item, in order, goes to the process with the least
    work so far, so shares are even when items differ in `size` (the batches of a quick run hold one or two
    images; Accelerate's split_between_processes counts items, not images)."""
    load, mine = [0] * count, []
    for item in items:
        owner = load.index(min(load))
        load[owner] += size(item)
        if owner == rank:
            mine.append(item)
    return mine


def part_file(folder: Path, stem: str, rank: int) -> Path:
    return Path(folder) / PARTS / f"{stem}-{rank}.jsonl"


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Add rows to a part file in one write, flushed to disk: a row there means its work is done."""
    text = "".join(json.dumps(row) + "\n" for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as file:  # appends go to the end whatever the position read from
        if file.seek(0, os.SEEK_END):
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":  # a row a stopped process cut off: end it, so it costs only itself
                text = "\n" + text
        file.write(text.encode())
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


def merge_rows(folder: Path, stem: str, key: str, order: Sequence[Any]) -> list[dict[str, Any]]:
    """Write `<stem>.jsonl` with one row per `key` in `order` (rows of work no longer asked for are dropped),
    from the merged file and the part files of any number of processes; then delete the parts."""
    parts = sorted((Path(folder) / PARTS).glob(f"{stem}-*.jsonl"))
    # The last row of a key wins: parts come after the merged file and hold only the run's own rows.
    by_key = {row[key]: row for row in read_rows([Path(folder) / f"{stem}.jsonl", *parts])}
    rows = [by_key[name] for name in order if name in by_key]
    merged = Path(folder) / f"{stem}.jsonl"
    merged.parent.mkdir(parents=True, exist_ok=True)
    temporary = merged.with_suffix(".jsonl.tmp")
    with temporary.open("w") as file:
        file.write("".join(json.dumps(row) + "\n" for row in rows))
        file.flush()
        os.fsync(file.fileno())  # on disk before the parts it replaces are deleted
    temporary.replace(merged)  # a run stopped while merging keeps the old file and the parts
    for part in parts:
        part.unlink()
    if (Path(folder) / PARTS).is_dir() and not any((Path(folder) / PARTS).iterdir()):
        (Path(folder) / PARTS).rmdir()
    return rows
