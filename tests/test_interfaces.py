"""Every interface presents the settings of settings.SETTINGS: the same names, ranges and defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from xml.etree import ElementTree

import gradio as gr
import pytest

from fineface_ui.aus import ACCEPTED_RANGE, AU_NAMES
from fineface_ui.cli import build_parser
from fineface_ui.errors import InvalidInputError
from fineface_ui.settings import SETTINGS, SPEC, GenerationSettings, parameter_table
from fineface_ui.web.ui import build_ui

README = Path(__file__).resolve().parent.parent / "README.md"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def controls(random_studio):
    """The page's input components by label."""
    demo = build_ui(random_studio)
    return {block.label: block for block in demo.blocks.values() if isinstance(block, gr.components.Component)}


def test_the_request_has_one_field_per_setting_with_its_default():
    fields = {field.name: field.default for field in dataclasses.fields(GenerationSettings)}
    assert list(fields) == ["prompt", "aus", *SPEC]
    assert {name: fields[name] for name in SPEC if name != "lora_scale"} == {
        name: setting.default for name, setting in SPEC.items() if name != "lora_scale"}
    assert fields["lora_scale"] is None  # keeps the strength the pipeline has fused


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.kind is not str], ids=lambda s: s.name)
def test_each_number_is_accepted_at_its_bounds_and_refused_beyond(setting):
    for value in (setting.low, setting.high):
        assert getattr(GenerationSettings.create("", None, **{setting.name: value}), setting.name) == value
    for value in (setting.low - setting.step, setting.high + setting.step):
        with pytest.raises(InvalidInputError, match=setting.label):
            GenerationSettings.create("", None, **{setting.name: value})


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.kind is not str and s.name != "seed"],
                         ids=lambda s: s.name)
def test_each_slider_spans_exactly_the_accepted_range(controls, setting):
    slider = controls[setting.label]
    assert (slider.minimum, slider.maximum, slider.step) == (setting.low, setting.high, setting.step)
    assert slider.info == setting.help


def test_the_seed_box_and_the_au_sliders_take_the_accepted_ranges(controls):
    seed = controls["Seed"]
    assert (seed.minimum, seed.maximum) == (SPEC["seed"].low, SPEC["seed"].high)
    for name in AU_NAMES:
        au = next(block for label, block in controls.items() if label and label.startswith(f"{name} ·"))
        assert (au.minimum, au.maximum) == ACCEPTED_RANGE


def test_each_setting_has_its_command_line_flag():
    generate = build_parser()._subparsers._group_actions[0].choices["generate"]
    flags = {action.dest: action for action in generate._actions}
    for setting in SETTINGS:
        assert flags[setting.name].option_strings == [setting.flag]
        assert flags[setting.name].type is setting.kind
    assert flags["scheduler"].choices == SPEC["scheduler"].choices


def test_the_readme_lists_the_parameters_as_the_spec_defines_them():
    assert parameter_table() in README.read_text()


def test_the_page_shows_the_au_map_with_every_au_on_it(random_studio):
    demo = build_ui(random_studio)
    (au_map,) = [block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "au-map"]
    drawing = ElementTree.fromstring(au_map.value)
    groups = {group.get("id"): "".join(group.itertext()) for group in drawing.iter(f"{SVG}g") if group.get("id")}
    assert set(AU_NAMES) <= set(groups)
    assert all(name in groups[name] for name in AU_NAMES)  # each labelled with its own name


def test_the_readme_shows_the_au_map():
    assert "(assets/au_map.svg)" in README.read_text()
