import math

import pytest

from fineface_ui.aus import AU_NAMES, au_dict, au_vector, canonical_name, format_aus, parse_au_string
from fineface_ui.errors import InvalidInputError


def test_the_twelve_aus_are_in_the_models_input_order():
    assert AU_NAMES == ("AU1", "AU2", "AU4", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17", "AU20", "AU25", "AU26")


def test_dict_list_and_string_give_the_same_vector():
    expected = [0, 0, 0, 0, 2.5, 0, 5, 0, 0, 0, 0, 0]
    assert au_vector({"AU6": 2.5, "AU12": 5}) == expected
    assert au_vector(expected) == expected
    assert au_vector("AU6=2.5, AU12=5") == expected
    assert au_vector("au6:2.5 12=5") == expected


def test_absent_aus_are_zero_and_neutral_round_trips():
    assert au_vector(None) == [0.0] * 12
    assert parse_au_string(format_aus({})) == {}
    assert parse_au_string(format_aus({"AU4": -2, "AU26": 7.5})) == {"AU4": -2, "AU26": 7.5}


def test_unknown_au_is_rejected_with_the_valid_names():
    with pytest.raises(InvalidInputError, match="AU3.*Valid AUs are: AU1, AU2, AU4"):
        au_dict({"AU3": 1})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "abc", None])
def test_non_finite_or_non_numeric_values_are_rejected(value):
    with pytest.raises(InvalidInputError, match="AU12"):
        au_dict({"AU12": value})


def test_negative_and_exaggerated_values_are_accepted_but_nonsense_is_not():
    assert au_dict({"AU12": -5, "AU5": 12})["AU12"] == -5
    with pytest.raises(InvalidInputError, match="outside the accepted range"):
        au_dict({"AU12": 1e9})


@pytest.mark.parametrize("bound", [-10, 15])
def test_the_accepted_range_includes_its_bounds(bound):
    assert au_dict({"AU12": bound})["AU12"] == bound
    assert parse_au_string(f"AU4={bound}") == {"AU4": bound}


@pytest.mark.parametrize("beyond", [-10.01, 15.01])
def test_just_beyond_the_accepted_range_is_rejected_naming_the_au_the_range_and_the_trained_range(beyond):
    expected = rf"AU12 = {beyond:g} is outside the accepted range -10\.\.15 \(the model was trained on 0\.\.5\)"
    with pytest.raises(InvalidInputError, match=expected):
        au_dict({"AU12": beyond})
    with pytest.raises(InvalidInputError, match="AU4 = .* outside the accepted range"):
        parse_au_string(f"AU4={beyond}")


def test_a_list_must_have_twelve_values():
    with pytest.raises(InvalidInputError, match="Expected 12"):
        au_vector([1.0] * 13)


def test_malformed_string_says_how_to_write_it():
    with pytest.raises(InvalidInputError, match="NAME=VALUE"):
        parse_au_string("AU12 3")


@pytest.mark.parametrize("text", ["AU12=1, AU12=5", "AU12=1 au12=5", "AU12=1; 12:5"])
def test_an_au_given_twice_in_the_text_form_is_refused_naming_it(text):
    with pytest.raises(InvalidInputError, match="AU12 is given twice"):
        parse_au_string(text)


def test_a_dict_naming_an_au_twice_in_two_spellings_is_refused_naming_both():
    with pytest.raises(InvalidInputError, match="AU12 is given twice \\('AU12' and 'au12'\\)"):
        au_dict({"AU12": 1, "au12": 5})


@pytest.mark.parametrize("value", [True, False, "5", 10**400], ids=["true", "false", "numeric-text", "huge-integer"])
def test_only_numbers_are_intensities_not_booleans_text_or_overflowing_integers(value):
    with pytest.raises(InvalidInputError, match="AU12"):
        au_dict({"AU12": value})
    with pytest.raises(InvalidInputError, match="AU1 "):
        au_dict([value] + [0] * 11)


def test_numeric_text_is_refused_stating_the_rule_for_numbers():
    with pytest.raises(InvalidInputError, match="numbers are sent as numbers, not as text or true/false"):
        au_dict({"AU12": "5"})


def test_an_au_name_must_be_text():
    with pytest.raises(InvalidInputError, match="An AU name must be text such as 'AU12', got None"):
        canonical_name(None)


def test_something_that_is_neither_text_a_dict_nor_a_list_is_refused():
    with pytest.raises(InvalidInputError, match="got int"):
        au_dict(5)
