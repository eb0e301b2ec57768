"""Keyframes as users type them, and the AU values of every frame between them."""

from __future__ import annotations

import pytest

from fineface_ui.aus import AU_NAMES, au_dict
from fineface_ui.errors import InvalidInputError
from fineface_ui.keyframes import (
    MAX_FRAMES,
    MAX_KEYFRAMES,
    Keyframe,
    Motion,
    format_keyframes,
    parse_keyframes,
)
from fineface_ui.presets import PRESETS


def test_each_keyframe_is_the_whole_twelve_au_setting_not_a_change():
    keys = parse_keyframes("0:neutral; 1.0:AU1=3,AU2=3,AU5=4,AU26=4; 2.0:AU6=3,AU12=4")
    assert [key.time for key in keys] == [0.0, 1.0, 2.0]
    assert keys[0].aus == au_dict({})
    assert keys[1].aus == au_dict({"AU1": 3, "AU2": 3, "AU5": 4, "AU26": 4})
    assert keys[2].aus == au_dict({"AU6": 3, "AU12": 4})  # AU1 is back to 0, not kept from the keyframe before
    assert list(keys[2].aus) == list(AU_NAMES)


def test_newlines_separate_keyframes_and_empty_entries_are_ignored():
    assert parse_keyframes("0:neutral\n1:AU12=4;\n\n") == parse_keyframes("0:neutral; 1:AU12=4")


def test_presets_are_named_in_any_case_even_with_a_colon_in_the_name():
    keys = parse_keyframes("0:NEUTRAL; 1.5:happiness; 3:paper: au4+25+26")
    assert keys[1].aus == au_dict(PRESETS["Happiness"])
    assert keys[2].aus == au_dict(PRESETS["Paper: AU4+25+26"])


def test_only_the_first_colon_separates_the_time():
    (key,) = parse_keyframes("2:AU6:2.5 AU12:4")
    assert key.time == 2 and key.aus == au_dict({"AU6": 2.5, "AU12": 4})


@pytest.mark.parametrize("text", ["", "  ", ";", "\n;\n"])
def test_no_keyframes_asks_for_one_with_an_example(text):
    with pytest.raises(InvalidInputError, match="at least one keyframe such as `0:neutral; 1:AU12=4`"):
        parse_keyframes(text)


@pytest.mark.parametrize(("text", "message"), [
    ("0:neutral; AU12=4", r"Keyframe 'AU12=4' has no colon\. Write keyframes TIME:SETTING"),
    ("0:neutral; soon:AU12=4", r"Keyframe 'soon:AU12=4': 'soon' is not a time in seconds such as 0 or 1\.5"),
    ("nan:AU12=4", r"Keyframe 'nan:AU12=4': the time must be a finite number of seconds, 0 or more; got nan"),
    ("-1:AU12=4", r"Keyframe '-1:AU12=4': the time must be a finite number of seconds, 0 or more; got -1\.0"),
    ("0:neutral; 1:", r"Keyframe '1:' has no setting after the colon"),
    ("0:AU3=2", r"Keyframe '0:AU3=2': Unknown Action Unit 'AU3'\. Valid AUs are: AU1, AU2"),
    ("0:happyness", r"Keyframe '0:happyness': Cannot read 'happyness'.*a preset name, such as `happiness`"),
    ("0:AU12=40", r"Keyframe '0:AU12=40': AU12 = 40 is outside the accepted range"),
])
def test_a_bad_entry_is_quoted_with_what_is_wrong(text, message):
    with pytest.raises(InvalidInputError, match=message):
        parse_keyframes(text)


@pytest.mark.parametrize("text", ["0:neutral; 2:AU12=4; 1.5:AU6=3", "0:neutral; 2:AU12=4; 2:AU6=3"])
def test_times_must_increase_and_the_message_names_both_keyframes(text):
    with pytest.raises(InvalidInputError, match=r"Keyframe times must increase: keyframe 3 \('[0-9.]+:AU6=3'\) is "
                                                r"at [0-9.]+ s, not after keyframe 2 \('2:AU12=4'\) at 2 s"):
        parse_keyframes(text)


def test_too_many_keyframes_are_refused():
    text = "; ".join(f"{second}:AU12={second % 5}" for second in range(MAX_KEYFRAMES + 1))
    with pytest.raises(InvalidInputError, match=f"{MAX_KEYFRAMES + 1} keyframes are too many; give at most "
                                                f"{MAX_KEYFRAMES}"):
        parse_keyframes(text)
    assert len(parse_keyframes(text.rsplit(";", 1)[0])) == MAX_KEYFRAMES


def test_formatted_keyframes_parse_back_to_the_same_keyframes():
    keys = parse_keyframes("0:neutral; 0.25:AU4=-2, AU26=7.5; 1.5:happiness; 3:AU6:2.125")
    text = format_keyframes(keys)
    assert text == "0:neutral; 0.25:AU4=-2, AU26=7.5; 1.5:AU6=3, AU12=4; 3:AU6=2.125"
    assert parse_keyframes(text) == keys


def test_one_second_at_8_fps_is_9_frames_from_the_first_keyframe_to_the_last():
    motion = Motion.create("0:neutral; 1:AU12=4", fps=8)
    assert motion.seconds == 1 and motion.frame_count == 9
    assert motion.times() == [index / 8 for index in range(9)]
    frames = motion.frame_aus()
    assert len(frames) == 9
    assert frames[0] == au_dict({}) and frames[-1] == au_dict({"AU12": 4})


def test_linear_is_halfway_at_the_midpoint_and_evenly_spaced():
    frames = Motion.create("0:AU4=1; 1:AU4=3, AU12=4", fps=4).frame_aus()
    assert [frame["AU4"] for frame in frames] == [1, 1.5, 2, 2.5, 3]
    assert [frame["AU12"] for frame in frames] == [0, 1, 2, 3, 4]


def test_ease_is_halfway_at_the_midpoint_and_starts_and_ends_flat():
    frames = Motion.create("0:neutral; 1:AU12=4", fps=30, easing="ease").frame_aus()
    values = [frame["AU12"] for frame in frames]
    assert values[15] == 2
    first_step, middle_step, last_step = values[1] - values[0], values[16] - values[15], values[30] - values[29]
    assert first_step < 0.02 and last_step < 0.02 and middle_step > 0.19  # linear would step 0.133 everywhere
    assert values == sorted(values)


def test_the_first_keyframe_holds_before_it_and_the_last_after_it():
    motion = Motion.create("0.5:AU12=2; 1:AU12=4", seconds=2, fps=4)
    assert [frame["AU12"] for frame in motion.frame_aus()] == [2, 2, 2, 3, 4, 4, 4, 4, 4]


def test_values_are_rounded_to_three_decimals():
    frames = Motion.create("0:neutral; 1:AU12=1", fps=3).frame_aus()
    assert [frame["AU12"] for frame in frames] == [0, 0.333, 0.667, 1]


def test_keyframe_objects_are_validated_like_text():
    motion = Motion.create([Keyframe(0, {"AU12": 1}), Keyframe(2, {"au6": 3})], fps=1)
    assert motion.keys == parse_keyframes("0:AU12=1; 2:AU6=3")
    with pytest.raises(InvalidInputError, match=r"keyframe 2 \('1:AU6=3'\) is at 1 s, not after keyframe 1"):
        Motion.create([Keyframe(1, {"AU12": 1}), Keyframe(1, {"AU6": 3})])
    with pytest.raises(InvalidInputError, match="The time of keyframe 1 must be a number, got '1'"):
        Motion.create([Keyframe("1", {})])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="Keyframe 2: the time must be a finite number of seconds"):
        Motion.create([Keyframe(0, {}), Keyframe(float("inf"), {})])
    with pytest.raises(InvalidInputError, match="Keyframe 1: Unknown Action Unit 'AU3'"):
        Motion.create([Keyframe(0, {"AU3": 1})])
    with pytest.raises(InvalidInputError, match="Keyframes must be text such as .* or a list of Keyframe, got int"):
        Motion.create(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="at least one keyframe"):
        Motion.create([])


def test_the_length_defaults_to_the_last_keyframe_and_a_lone_keyframe_at_0_needs_one():
    assert Motion.create("0:neutral; 2.5:AU12=4").seconds == 2.5
    assert Motion.create("3:AU12=4", fps=1).seconds == 3
    with pytest.raises(InvalidInputError, match="A single keyframe at 0 s needs a length: give the seconds"):
        Motion.create("0:happiness")
    assert Motion.create("0:happiness", seconds=2).frame_aus()[-1] == au_dict(PRESETS["Happiness"])


def test_a_keyframe_after_the_end_is_named():
    with pytest.raises(InvalidInputError, match=r"Keyframe 2 \('3:AU12=4'\) at 3 s is after the end of the motion "
                                                r"at 2 s"):
        Motion.create("0:neutral; 3:AU12=4", seconds=2)


@pytest.mark.parametrize(("seconds", "message"), [
    (-1, "The length must be more than 0 and at most 60 seconds, got -1"),
    (61, "The length must be more than 0 and at most 60 seconds, got 61"),
    (float("nan"), "The length must be more than 0 and at most 60 seconds, got nan"),
    ("2", "The length must be a number, got '2' .numbers are sent as numbers"),
    (True, "The length must be a number, got True"),
])
def test_the_length_follows_the_rule(seconds, message):
    with pytest.raises(InvalidInputError, match=message):
        Motion.create("0:neutral; 0.5:AU12=4", seconds=seconds)


def test_a_last_keyframe_beyond_the_longest_length_says_where_the_length_came_from():
    with pytest.raises(InvalidInputError, match=r"The length \(the last keyframe's time\) must be more than 0 and at "
                                                "most 60 seconds, got 90"):
        Motion.create("0:neutral; 90:AU12=4", fps=1)


@pytest.mark.parametrize(("fps", "message"), [
    (0, "Frames per second must be a whole number from 1 to 30, got 0"),
    (31, "Frames per second must be a whole number from 1 to 30, got 31"),
    (12.5, "Frames per second must be a whole number from 1 to 30, got 12.5"),
    ("12", "Frames per second must be a number, got '12'"),
    (False, "Frames per second must be a number, got False"),
])
def test_fps_follows_the_rule(fps, message):
    with pytest.raises(InvalidInputError, match=message):
        Motion.create("0:neutral; 1:AU12=4", fps=fps)


def test_a_whole_float_fps_is_kept_as_an_int():
    assert Motion.create("0:neutral; 1:AU12=4", fps=12.0).fps == 12


def test_frames_are_capped_and_the_message_gives_the_count_and_the_limit():
    assert Motion.create("0:neutral; 12:AU12=4", fps=24).frame_count == 289 <= MAX_FRAMES
    with pytest.raises(InvalidInputError, match=f"13 s at 24 fps is 313 frames; the limit is at most {MAX_FRAMES} "
                                                r"frames \(12 s at 24 fps is 289\)"):
        Motion.create("0:neutral; 13:AU12=4", fps=24)


def test_a_motion_of_a_single_frame_is_refused():
    with pytest.raises(InvalidInputError, match="0.01 s at 12 fps is a single frame; .* at least 0.0833 s long"):
        Motion.create("0:neutral; 0.01:AU12=4")


@pytest.mark.parametrize("easing", ["bounce", None, ["ease"]])
def test_an_unknown_easing_lists_the_choices(easing):
    with pytest.raises(InvalidInputError, match="Unknown easing .*; choose one of linear, ease"):
        Motion.create("0:neutral; 1:AU12=4", easing=easing)


def test_as_dict_is_enough_to_make_the_same_motion_again():
    motion = Motion.create("0:neutral; 1:AU1=3,AU2=3; 2:happiness", seconds=2.5, fps=8, easing="ease")
    stored = motion.as_dict()
    assert stored == {"keys": "0:neutral; 1:AU1=3, AU2=3; 2:AU6=3, AU12=4", "seconds": 2.5, "fps": 8,
                      "easing": "ease", "frames": 21}
    assert Motion.create(stored["keys"], stored["seconds"], stored["fps"], stored["easing"]) == motion


def test_animated_aus_are_those_that_change_in_model_order():
    motion = Motion.create("0:AU4=2, AU12=1; 1:AU4=2, AU26=3, AU1=1")
    assert motion.animated_aus() == ["AU1", "AU12", "AU26"]


def test_a_length_of_0_means_until_the_last_keyframe():
    assert Motion.create("0:neutral; 2.5:AU12=4", seconds=0) == Motion.create("0:neutral; 2.5:AU12=4")


def test_a_length_between_two_frames_still_ends_exactly_on_the_last_keyframe():
    motion = Motion.create("0:neutral; 1.04:AU12=4", fps=12)
    assert motion.frame_count == 13 and motion.times()[-1] == 1.04
    assert motion.frame_aus()[-1]["AU12"] == 4
