"""Limits of one generation request that no single control on the page shows."""

import pytest

from fineface_ui.errors import InvalidInputError
from fineface_ui.settings import SETTINGS, SPEC, GenerationSettings

NUMBERS = [setting for setting in SETTINGS if setting.kind is not str]


def test_thirty_two_au_settings_in_one_call_are_accepted():
    settings = GenerationSettings.create("a face", [{"AU12": frame / 8} for frame in range(32)])
    assert len(settings.aus) == 32 and settings.aus[31]["AU12"] == 31 / 8


def test_a_thirty_third_au_setting_is_rejected_naming_the_limit():
    with pytest.raises(InvalidInputError, match="At most 32 AU settings per call, got 33"):
        GenerationSettings.create("a face", [{"AU12": 1}] * 33)
    with pytest.raises(InvalidInputError, match="got 33"):
        GenerationSettings.create("a face", ["AU12=1"] * 33)


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.name)
@pytest.mark.parametrize("value", [True, False], ids=["true", "false"])
def test_a_boolean_is_not_a_number_for_any_setting(setting, value):
    with pytest.raises(InvalidInputError, match=f"{setting.label} must be a number, got {value}"):
        GenerationSettings.create("a face", None, **{setting.name: value})


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.name)
def test_a_number_given_as_text_is_refused_stating_the_rule(setting):
    with pytest.raises(InvalidInputError, match="numbers are sent as numbers, not as text or true/false"):
        GenerationSettings.create("a face", None, **{setting.name: str(setting.default)})


def test_an_integer_too_large_for_a_float_is_out_of_range_not_a_crash():
    with pytest.raises(InvalidInputError, match="Seed must be between"):
        GenerationSettings.create("a face", None, seed=10**400)


@pytest.mark.parametrize("name", ["prompt", "negative_prompt"])
def test_text_with_a_lone_surrogate_is_not_valid_text(name):
    values = {"prompt": "a face", name: "a sm\ud800ile"}
    with pytest.raises(InvalidInputError, match=r"rompt is not valid text: character 5 .*'\\ud800'"):
        GenerationSettings.create(**values)


@pytest.mark.parametrize("aus", [5, {"AU12": 1}, "AU12=1", []], ids=["number", "dict", "text", "empty-list"])
def test_stored_settings_whose_aus_are_not_a_list_of_au_settings_are_refused_readably(aus):
    with pytest.raises(InvalidInputError, match="The stored aus must be a list with one AU setting per image"):
        GenerationSettings.from_metadata({"prompt": "a face", "aus": aus, "scheduler": "dpm++"})


def test_a_list_mixing_au_settings_and_other_values_is_refused_readably():
    with pytest.raises(InvalidInputError, match="got int"):
        GenerationSettings.create("a face", [{"AU12": 1}, 5])


@pytest.mark.parametrize("name", [s.name for s in SETTINGS if s.choices])
def test_no_choice_at_all_is_refused_naming_the_choices(name):
    with pytest.raises(InvalidInputError) as refused:
        GenerationSettings.create("a face", **{name: None})
    assert all(choice in str(refused.value) for choice in SPEC[name].choices)
