"""An edit request: target AUs against the AUs read from the photo; MagicFace is given the change."""

from __future__ import annotations

import pytest

from fineface_ui.aus import AU_NAMES
from fineface_ui.edit_settings import EDIT_SPEC, EditSettings, parse_point
from fineface_ui.errors import InvalidInputError

READ = {"AU6": 1.5, "AU12": 2.0, "AU25": 0.5}


def test_set_aus_are_targets_and_the_others_keep_the_value_read():
    settings = EditSettings.create(READ, "AU12=4")
    assert settings.aus["AU12"] == 4 and settings.aus["AU6"] == 1.5 and settings.aus["AU25"] == 0.5
    assert settings.change() == [2.0 if name == "AU12" else 0.0 for name in AU_NAMES]


def test_a_change_adds_to_the_value_read_and_combines_with_set_aus():
    settings = EditSettings.create(READ, {"AU25": 3}, change="AU6=+2, AU12=-1.5")
    assert (settings.aus["AU6"], settings.aus["AU12"], settings.aus["AU25"]) == (3.5, 0.5, 3)
    assert settings.as_dict()["au_change"]["AU12"] == -1.5


def test_neutral_sets_every_au_to_zero_and_no_request_changes_nothing():
    assert set(EditSettings.create(READ, "neutral").aus.values()) == {0.0}
    assert EditSettings.create(READ).change() == [0.0] * 12


def test_an_au_both_set_and_changed_is_refused():
    with pytest.raises(InvalidInputError, match="AU12 is both set and changed"):
        EditSettings.create(READ, "AU12=4", change="au12=1")


@pytest.mark.parametrize("request_, message", [
    ({"aus": "AU3=1"}, "Unknown Action Unit 'AU3'"),
    ({"change": "AU12=14"}, r"AU12 read from the photo \(2\) \+14 is 16, outside the accepted range"),
    ({"aus": "AU12=nan"}, "AU12 must be a finite number"),
    ({"guidance_scale": 11}, "Guidance scale must be between 0 and 10"),
    ({"num_inference_steps": 0}, "Steps must be between 1 and 150"),
    ({"strength": 1}, "Unknown edit setting"),
])
def test_bad_values_are_refused_with_a_readable_message(request_, message):
    with pytest.raises(InvalidInputError, match=message):
        EditSettings.create(READ, **request_)


def test_the_defaults_are_magicfaces_own():
    assert EDIT_SPEC["num_inference_steps"].default == 50 and EDIT_SPEC["guidance_scale"].default == 1.5


@pytest.mark.parametrize("text, point", [("420,310", (420.0, 310.0)), (" 3.5 , 7 ", (3.5, 7.0)), ("", None),
                                         (None, None)])
def test_a_face_point_is_read_as_x_and_y(text, point):
    assert parse_point(text) == point


@pytest.mark.parametrize("text", ["420", "a,b", "1,2,3", "-1,5", "nan,3"])
def test_a_bad_face_point_is_refused(text):
    with pytest.raises(InvalidInputError, match="point"):
        parse_point(text)
