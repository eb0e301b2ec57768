"""Limits of one generation request that no single control on the page shows."""

import pytest

from fineface_ui.errors import InvalidInputError
from fineface_ui.settings import GenerationSettings


def test_thirty_two_au_settings_in_one_call_are_accepted():
    settings = GenerationSettings.create("a face", [{"AU12": frame / 8} for frame in range(32)])
    assert len(settings.aus) == 32 and settings.aus[31]["AU12"] == 31 / 8


def test_a_thirty_third_au_setting_is_rejected_naming_the_limit():
    with pytest.raises(InvalidInputError, match="At most 32 AU settings per call, got 33"):
        GenerationSettings.create("a face", [{"AU12": 1}] * 33)
    with pytest.raises(InvalidInputError, match="got 33"):
        GenerationSettings.create("a face", ["AU12=1"] * 33)
