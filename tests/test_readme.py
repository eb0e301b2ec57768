"""The README describes the tree as it is."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fineface_ui"


def layout_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Layout"):]
    return section[section.index("```") + 4:section.index("```", section.index("```") + 3)].splitlines()


def described_paths() -> set[str]:
    """Every file and folder the layout names, as a path from the root (two spaces of indent: one level)."""
    paths, parents = set(), []
    for line in layout_lines():
        indent = len(line) - len(line.lstrip())
        if indent >= 30:  # a description's second line
            continue
        del parents[indent // 2:]
        names = re.findall(r"[\w.]+/?", re.split(r" {2,}", line.strip())[0])
        paths |= {"/".join([*parents, name.rstrip("/")]) for name in names}
        if names[-1].endswith("/"):
            parents.append(names[-1].rstrip("/"))
    return paths


def test_the_layout_names_every_module_and_folder_of_the_package_and_nothing_that_is_gone():
    described = {path for path in described_paths() if path.startswith("fineface_ui/")}
    actual = {str(path.relative_to(ROOT)) for path in PACKAGE.rglob("*.py")
              if path.name not in ("__init__.py", "__main__.py")
              and path.parent.name not in ("standins", "bench")}
    actual |= {str(path.relative_to(ROOT)) for path in PACKAGE.rglob("*")
               if path.is_dir() and path.name != "__pycache__"}
    assert described == actual


def test_the_layout_names_the_top_level_pictures_folder():
    assert "assets" in described_paths() and (ROOT / "assets").is_dir()
