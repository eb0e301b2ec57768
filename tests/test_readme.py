"""The README describes the tree as it is."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def layout_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Layout"):]


def test_the_layout_names_every_module_of_the_package_and_nothing_that_is_gone():
    layout = layout_section()
    package = ROOT / "fineface_ui"
    top_level = {path.name for path in package.glob("*.py") if path.name not in ("__init__.py", "__main__.py")}
    named = set(re.findall(r"\b([a-z_]+\.py)\b", layout)) - {"app.py"}
    assert named == top_level
    for folder in ("standins", "bench", "assets"):
        assert (package / folder).is_dir() and f"{folder}/" in layout
