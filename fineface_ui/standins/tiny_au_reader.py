"""A tiny stand-in for LibreFace's AU network, so that reading expressions runs offline (tests,
--random-weights): the same input and output names and shapes, a fixed random projection of the aligned
face's 8x8-pooled pixels through a sigmoid. Its readings follow the pixels, not the expression."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..faces.alignment import INPUT_SIDE
from ..faces.au_reader import INPUT_NAME, OUTPUT_AUS, OUTPUT_NAME
from .tiny_face_models import _finish, _Graph

POOLED = 8


def build_au_reader(seed: int = 5) -> onnx.ModelProto:
    g = _Graph()
    rng = np.random.default_rng(seed)
    window = INPUT_SIDE // POOLED
    pooled = g.op("AveragePool", INPUT_NAME, kernel_shape=[window, window], strides=[window, window])
    flat = g.op("Flatten", pooled, axis=1)
    features = 3 * POOLED * POOLED
    projected = g.op("MatMul", flat, g.const(rng.standard_normal((features, len(OUTPUT_AUS))) / np.sqrt(features)))
    g.output("Sigmoid", [g.op("Add", projected, g.const(0.3 * rng.standard_normal(len(OUTPUT_AUS))))], OUTPUT_NAME)
    graph = helper.make_graph(
        g.nodes,
        "pooled_projection_au_reader",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, INPUT_SIDE, INPUT_SIDE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [1, len(OUTPUT_AUS)])],
        g.initializers,
    )
    return _finish(graph)


def write_au_reader(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build_au_reader(), path)
    return path
