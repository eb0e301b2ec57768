"""Settings read back from PNG files, including files made to break the reader."""

from __future__ import annotations

import json

import pytest
from PIL import Image, PngImagePlugin

from fineface_ui.errors import InvalidInputError
from fineface_ui.png_info import JSON_KEY, read_settings
from fineface_ui.settings import GenerationSettings


def png_with_settings(path, text: str, compressed: bool = False):
    info = PngImagePlugin.PngInfo()
    info.add_text(JSON_KEY, text, zip=compressed)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_a_settings_chunk_beyond_the_png_readers_text_limit_is_refused_readably(tmp_path):
    huge = json.dumps({"scheduler": "dpm++", "prompt": "a" * 3_000_000})
    path = png_with_settings(tmp_path / "huge.png", huge, compressed=True)
    with pytest.raises(InvalidInputError, match="huge.png has a text chunk larger than"):
        read_settings(path)


def test_a_scheduler_that_is_a_list_is_refused_readably(tmp_path):
    path = png_with_settings(tmp_path / "listed.png", json.dumps({"scheduler": ["dpm++"], "aus": [{}]}))
    with pytest.raises(InvalidInputError, match="not in a format this version reads"):
        read_settings(path)


@pytest.mark.parametrize("aus", [5, {"AU12": 1}], ids=["number", "dict"])
def test_stored_aus_that_are_not_a_list_are_refused_readably(tmp_path, aus):
    path = png_with_settings(tmp_path / "odd.png", json.dumps({"scheduler": "dpm++", "prompt": "a face", "aus": aus}))
    with pytest.raises(InvalidInputError, match="The stored aus must be a list"):
        GenerationSettings.from_metadata(read_settings(path))


def test_settings_written_by_the_app_read_back_as_they_were(tmp_path):
    settings = GenerationSettings.create("a face", "AU12=3", seed=5).as_dict()
    path = png_with_settings(tmp_path / "good.png", json.dumps(settings))
    assert GenerationSettings.from_metadata(read_settings(path)).as_dict() == settings
