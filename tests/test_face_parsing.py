"""Face parsing (BiSeNet, face-parsing.PyTorch's 79999_iter.pth) on a full-size random-weight stand-in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fineface_ui.engine.checkpoints import read_state_dict
from fineface_ui.errors import CheckpointError
from fineface_ui.faces.face_parsing import (
    CLASS_NAMES,
    FACE_CLASSES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PARSER_SIDE,
    BiSeNet,
    face_region,
    load_face_parser,
    parse_face,
)
from fineface_ui.standins.tiny_face_parser import write_face_parser


@pytest.fixture(scope="module")
def parser_file(tmp_path_factory):
    return write_face_parser(tmp_path_factory.mktemp("face-parser") / "79999_iter.pth")


@pytest.fixture(scope="module")
def parser(parser_file):
    return load_face_parser(parser_file)


@pytest.fixture(scope="module")
def face_photo():
    """A smooth, non-symmetric 512x512 RGB image: each channel a different ramp."""
    rows, columns = np.mgrid[:PARSER_SIDE, :PARSER_SIDE]
    return np.stack([columns // 2, rows // 2, (rows + columns) // 4], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def labels(parser, face_photo):
    return parse_face(parser, face_photo)


def _saved_with(tmp_path: Path, state: dict) -> Path:
    path = tmp_path / "79999_iter.pth"
    torch.save(state, path)
    return path


def test_the_stand_in_holds_the_real_files_191_tensors_and_loads(parser_file, parser):
    state = read_state_dict(parser_file)
    assert len(state) == 191
    counters = [key for key in state if key.endswith("num_batches_tracked")]
    assert len(counters) == 31 and all(state[key].dtype == torch.int64 and state[key].shape == () for key in counters)
    assert sum(value.numel() for key, value in state.items() if key not in counters) == 13_313_088
    expected_shapes = {
        "cp.resnet.conv1.weight": (64, 3, 7, 7),
        "cp.resnet.layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "cp.resnet.layer4.1.bn2.running_var": (512,),
        "cp.arm32.conv_atten.weight": (128, 128, 1, 1),
        "cp.conv_avg.conv.weight": (128, 512, 1, 1),
        "ffm.convblk.conv.weight": (256, 256, 1, 1),  # 128 backbone + 128 context channels
        "ffm.conv1.weight": (64, 256, 1, 1),
        "conv_out.conv_out.weight": (19, 256, 1, 1),
        "conv_out16.conv_out.weight": (19, 64, 1, 1),
        "conv_out32.conv.conv.weight": (64, 128, 3, 3),
    }
    assert {key: tuple(state[key].shape) for key in expected_shapes} == expected_shapes
    assert not any(key.startswith("fc") or ".fc." in key for key in state)
    assert all((value > 0).all() for key, value in state.items() if key.endswith("running_var"))

    assert isinstance(parser, BiSeNet) and not parser.training
    loaded = parser.state_dict()
    assert all(torch.equal(loaded[key], state[key]) for key in state)


def test_loading_in_half_precision_keeps_the_batch_counters_integer(parser_file):
    parser = load_face_parser(parser_file, dtype=torch.bfloat16)
    assert parser.cp.resnet.conv1.weight.dtype == torch.bfloat16
    assert parser.cp.resnet.bn1.num_batches_tracked.dtype == torch.int64


def test_a_missing_key_fails_naming_the_file_and_the_key(parser_file, tmp_path):
    state = read_state_dict(parser_file)
    del state["cp.arm16.bn_atten.running_var"]
    with pytest.raises(CheckpointError, match="79999_iter.pth") as failure:
        load_face_parser(_saved_with(tmp_path, state))
    assert "missing" in str(failure.value) and "cp.arm16.bn_atten.running_var" in str(failure.value)


def test_a_renamed_key_fails_naming_both_names(parser_file, tmp_path):
    state = read_state_dict(parser_file)
    state["conv_out.classifier.weight"] = state.pop("conv_out.conv_out.weight")
    with pytest.raises(CheckpointError, match="79999_iter.pth") as failure:
        load_face_parser(_saved_with(tmp_path, state))
    message = str(failure.value)
    assert "missing" in message and "conv_out.conv_out.weight" in message
    assert "unexpected" in message and "conv_out.classifier.weight" in message


@pytest.mark.parametrize("damage", ["truncated", "not a state dict"])
def test_an_unreadable_file_fails_readably(parser_file, tmp_path, damage):
    path = tmp_path / "79999_iter.pth"
    if damage == "truncated":
        path.write_bytes(parser_file.read_bytes()[:1_000_000])
        expected = "corrupt or truncated"
    else:
        torch.save([torch.zeros(3)], path)
        expected = "holds a list, not a state dict"
    with pytest.raises(CheckpointError, match=expected) as failure:
        load_face_parser(path)
    assert "79999_iter.pth" in str(failure.value)


def test_parse_face_gives_one_class_per_pixel_at_512(labels):
    assert labels.shape == (PARSER_SIDE, PARSER_SIDE) and labels.dtype == np.uint8
    assert labels.max() < len(CLASS_NAMES) == 19
    assert len(np.unique(labels)) > 1  # the map follows the pixels; not one constant class


def test_parse_face_is_deterministic(parser, face_photo, labels):
    assert np.array_equal(parse_face(parser, face_photo), labels)


def test_parse_face_feeds_rgb_normalised_by_imagenet_statistics_and_takes_the_main_head(parser, face_photo, labels):
    pixels = torch.from_numpy(face_photo).permute(2, 0, 1)[None].float() / 255
    normalised = (pixels - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    with torch.no_grad():
        logits = parser(normalised)
    assert logits.shape == (1, 19, PARSER_SIDE, PARSER_SIDE)
    assert np.array_equal(logits[0].argmax(dim=0).numpy().astype(np.uint8), labels)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((256, 256, 3), np.uint8),
        np.zeros((512, 512, 4), np.uint8),
        np.zeros((512, 512), np.uint8),
        np.zeros((512, 512, 3), np.float32),
    ],
    ids=["256 px", "RGBA", "grey", "float"],
)
def test_parse_face_refuses_anything_but_a_512_rgb_uint8_image(parser, image):
    with pytest.raises(ValueError, match="512x512x3 uint8 RGB"):
        parse_face(parser, image)


def test_face_region_is_the_skin_brows_eyes_glasses_nose_mouth_lips_and_necklace():
    names = {"skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "nose", "mouth", "u_lip", "l_lip", "neck_l"}
    assert {CLASS_NAMES[label] for label in FACE_CLASSES} == names
    every_class = np.arange(len(CLASS_NAMES), dtype=np.uint8).reshape(1, -1).repeat(3, axis=0)
    region = face_region(every_class)
    assert region.dtype == bool and region.shape == every_class.shape
    assert region.all(axis=0).tolist() == region.any(axis=0).tolist()  # per class, not per position
    assert {CLASS_NAMES[label] for label in np.flatnonzero(region[0])} == names
