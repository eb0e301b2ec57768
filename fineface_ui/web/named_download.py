"""A result's PNG under a readable name, for the download button.

Result files are named by a random id (several tabs write into one folder). The browser saves a
download under the served file's own name (Gradio sends it in Content-Disposition, which wins over
the page's download attribute), so the button gets a hard link to the result named for what it is.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from PIL import Image

from ..aus import AU_NAMES, au_dict
from ..edit_settings import EDIT_PIPELINE
from ..png_info import save_png

# Gradio copies a file into its own cache when it sends it to the page, so a link is needed only
# until then; an hour is ample, and bounds the folder on a long-running server.
LINK_AGE_S = 3600


def download_name(metadata: dict[str, Any]) -> str:
    """'fineface-seed7-AU6_2.5-AU12_4.png': the seed and the non-zero AUs of one image's settings; for a photo
    edit, 'fineface-edit-seed0-AU12_4.5.png': the AUs it changed, at the values asked for (the others are the
    photo's own)."""
    asked = au_dict(metadata["aus"][0])
    if metadata.get("pipeline") == EDIT_PIPELINE:
        aus = "".join(f"-{name}_{round(asked[name], 2):g}" for name in AU_NAMES
                      if round(metadata["au_change"][name], 2) != 0)
        return f"fineface-edit-seed{metadata['seed']}{aus}.png"
    aus = "".join(f"-{name}_{value:g}" for name, value in asked.items() if value != 0)
    return f"fineface-seed{metadata['seed']}{aus}.png"


def named_link(path: Path, metadata: dict[str, Any]) -> Path:
    """A hard link to the result at `path`, named by download_name; links older than LINK_AGE_S go.
    A result measured since it was written (readouts.py) is a copy instead, with the reading inside:
    the shown file stays as it was, so the page never fetches the same image again under a new URL."""
    downloads = path.parent / "downloads"
    downloads.mkdir(exist_ok=True)
    limit = time.time() - LINK_AGE_S
    for folder in downloads.iterdir():
        if folder.stat().st_mtime < limit:
            shutil.rmtree(folder, ignore_errors=True)
    # One folder per result: two images may share a name (same seed and AUs, another prompt).
    measured = "measured_aus" in metadata
    link = downloads / path.stem / ("measured" if measured else "") / download_name(metadata)
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        if measured:  # written aside, then renamed: a download of it never finds half a file
            with Image.open(path) as image:
                save_png(image, link.with_name(f"writing-{link.name}"), metadata).replace(link)
        else:
            os.link(path, link)
    return link
