"""Tiny stand-ins for InsightFace's buffalo_l pack, so the face path runs offline (tests, --random-weights).

The detector finds "faces" that are bright (BT.601 luma above 160), squarish
(aspect 0.6-1.67), axis-aligned rectangles, 10-600 px wide in the detector's
input; its score is the rectangle's squareness. The recognizer is a fixed
random projection of the aligned crop's 8x8-pooled pixels minus their mean.
Both are real ONNX graphs that InsightFace routes as SCRFD and ArcFaceONNX,
so the whole FaceAnalysis path is exercised. The 3D landmark model always
gives InsightFace's mean 68-point face, placed by the box it is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR that onnx pairs with opset 17; onnxruntime 1.32 reads it

DETECTOR_FILE = "det_10g.onnx"
RECOGNIZER_FILE = "w600k_r50.onnx"
LANDMARK_FILE = "1k3d68.onnx"
EMBEDDING_SIZE = 512
# InsightFace's 3D-68 landmark model: a 192 px crop in, 3309 values out, of which the last 68 x 3 are the
# points (x, y, z in [-1, 1] of the crop).
LANDMARK_INPUT_SIDE = 192
LANDMARK_OUTPUTS = 3309

# SCRFD feeds RGB planes normalised as (pixel - 127.5) / 128; luma weights sum to 1,
# so the threshold is luma 160 in the same units.
LUMA = (0.299, 0.587, 0.114)
BRIGHT_THRESHOLD = (160.0 - 127.5) / 128.0
STRIDE_SIZE_RANGES = {8: (10.0, 80.0), 16: (40.0, 200.0), 32: (100.0, 600.0)}
MIN_SQUARENESS = 0.6
# Landmarks as fractions of the box, taken from ArcFace's 112x112 template so
# that the aligned crop is exactly the detected rectangle.
_ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
KEYPOINT_FRACTIONS = _ARCFACE_TEMPLATE / 112.0
# Prefix maxima are built by doubling; 2**10 px covers any accepted face.
_DOUBLING_STEPS = 10
_INT64_MAX = np.iinfo(np.int64).max
PROJECTED_FEATURES = 17  # box 4, keypoints 10, width, height, bright


class _Graph:
    """Small builder that names nodes and constants uniquely."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, value, dtype=np.float32) -> str:
        name = self._name("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs) -> str:
        out = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def output(self, op_type: str, inputs: list[str], name: str, **attrs) -> None:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=f"out_{name}", **attrs))


def _shift(g: _Graph, x: str, by: int, axis: int, forward: bool) -> str:
    """x moved `by` pixels along `axis` (towards higher indices if forward), zero-filled."""
    pads = [0] * 8
    pads[axis if forward else axis + 4] = by
    padded = g.op("Pad", x, g.const(pads, np.int64), g.const(0.0))
    if forward:
        return g.op("Slice", padded, g.const([0], np.int64), g.const([-by], np.int64), g.const([axis], np.int64))
    return g.op("Slice", padded, g.const([by], np.int64), g.const([_INT64_MAX], np.int64), g.const([axis], np.int64))


def _run_length(g: _Graph, mask: str, axis: int, reverse: bool) -> str:
    """Per pixel: how many consecutive bright pixels end (or start) here, itself included.

    With C the running count of bright pixels, the run length is C minus C at
    the last dark pixel; that value is a running maximum of C masked to dark
    pixels, which ONNX lacks, so it is built from shifted maxima.
    """
    count = g.op("CumSum", mask, g.const(axis, np.int64), reverse=int(reverse))
    dark = g.op("Sub", g.const(1.0), mask)
    at_dark = g.op("Mul", count, dark)
    running_max = at_dark
    for step in range(_DOUBLING_STEPS):
        running_max = g.op("Max", running_max, _shift(g, running_max, 2**step, axis, forward=not reverse))
    return g.op("Sub", count, running_max)


def _anchor_rows(g: _Graph, features: str, width: int) -> str:
    """[1,h,w,C] -> [h*w*2, C]: one row per anchor, two identical anchors per cell as SCRFD lays them out."""
    one = g.op("Unsqueeze", features, g.const([3], np.int64))
    two = g.op("Concat", one, one, axis=3)
    return g.op("Reshape", two, g.const([-1, width], np.int64))


def _columns(g: _Graph, rows: str, start: int, end: int) -> str:
    return g.op("Slice", rows, g.const([start], np.int64), g.const([end], np.int64), g.const([1], np.int64))


def _edge_distances(g: _Graph) -> str:
    """[1,5,h,w]: per pixel, the distances to its bright rectangle's left, top, right and bottom edges
    (right/bottom exclusive), then whether it is bright at all."""
    # Luma weighs red and blue very differently, so a BGR/RGB mix-up changes what is "bright".
    brightness = g.op("Conv", "input.1", g.const(np.array(LUMA, np.float32).reshape(1, 3, 1, 1)))
    mask = g.op("Cast", g.op("Greater", brightness, g.const(BRIGHT_THRESHOLD)), to=TensorProto.FLOAT)
    left = _run_length(g, mask, axis=3, reverse=False)
    right = _run_length(g, mask, axis=3, reverse=True)
    top = _run_length(g, mask, axis=2, reverse=False)
    bottom = _run_length(g, mask, axis=2, reverse=True)
    return g.op("Concat", g.op("Sub", left, g.const(1.0)), g.op("Sub", top, g.const(1.0)), right, bottom, mask,
                axis=1)


def _anchor_projection() -> np.ndarray:
    """[5, 17]: edge distances -> box (4), keypoints (10), width, height, bright at the anchor.

    All of them are linear in (dl, dt, dr, db), so one matrix computes them.
    """
    fx, fy = KEYPOINT_FRACTIONS[:, 0], KEYPOINT_FRACTIONS[:, 1]
    columns = [np.eye(5)[:, k] for k in range(4)]  # dl, dt, dr, db
    for x_frac, y_frac in zip(fx, fy, strict=True):
        columns.append([x_frac - 1.0, 0.0, x_frac, 0.0, 0.0])
        columns.append([0.0, y_frac - 1.0, 0.0, y_frac, 0.0])
    columns.append([1.0, 0.0, 1.0, 0.0, 0.0])  # width
    columns.append([0.0, 1.0, 0.0, 1.0, 0.0])  # height
    columns.append([0.0, 0.0, 0.0, 0.0, 1.0])  # bright at the anchor
    return np.array(columns, dtype=np.float32).T


def _stride_outputs(g: _Graph, geometry: str, projection: str, stride: int) -> tuple[str, str, str]:
    """Score, box and keypoint rows of one stride's anchors, as SCRFD's head would give them."""
    smallest, largest = STRIDE_SIZE_RANGES[stride]
    at_anchors = g.op(
        "Slice", geometry,
        g.const([0, 0], np.int64), g.const([_INT64_MAX, _INT64_MAX], np.int64),
        g.const([2, 3], np.int64), g.const([stride, stride], np.int64),
    )
    features = g.op("MatMul", g.op("Transpose", at_anchors, perm=[0, 2, 3, 1]), projection)
    rows = _anchor_rows(g, features, PROJECTED_FEATURES)
    in_stride_units = g.const(1.0 / stride)
    box = g.op("Mul", _columns(g, rows, 0, 4), in_stride_units)
    keypoints = g.op("Mul", _columns(g, rows, 4, 14), in_stride_units)
    width, height, bright = (_columns(g, rows, k, k + 1) for k in (14, 15, 16))
    short = g.op("Min", width, height)
    long = g.op("Max", width, height)
    squareness = g.op("Div", short, g.op("Max", long, g.const(1.0)))
    accepted = g.op(
        "And",
        g.op("And", g.op("GreaterOrEqual", short, g.const(smallest)), g.op("LessOrEqual", long, g.const(largest))),
        g.op("GreaterOrEqual", squareness, g.const(MIN_SQUARENESS)),
    )
    gate = g.op("Mul", bright, g.op("Cast", accepted, to=TensorProto.FLOAT))
    return g.op("Mul", gate, squareness), box, keypoints


def build_detector() -> onnx.ModelProto:
    """SCRFD-shaped detector (9 outputs: scores, boxes, keypoints for strides 8/16/32)."""
    g = _Graph()
    geometry = _edge_distances(g)
    projection = g.const(_anchor_projection())
    per_stride = {stride: _stride_outputs(g, geometry, projection, stride) for stride in STRIDE_SIZE_RANGES}
    graph_outputs = []
    # SCRFD reads all scores, then all boxes, then all keypoints.
    for position, (kind, size) in enumerate((("score", 1), ("bbox", 4), ("kps", 10))):
        for stride, tensors in per_stride.items():
            name = f"{kind}_{stride}"
            g.output("Identity", [tensors[position]], name)
            graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"anchors_{stride}", size]))
    graph = helper.make_graph(
        g.nodes,
        "bright_rectangle_detector",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])],
        graph_outputs,
        g.initializers,
    )
    return _finish(graph)


def build_recognizer(seed: int = 0) -> onnx.ModelProto:
    """ArcFace-shaped recognizer: 1x3x112x112 -> 512, a fixed projection of pooled pixels."""
    g = _Graph()
    rng = np.random.default_rng(seed)
    pooled = g.op("AveragePool", "input.1", kernel_shape=[14, 14], strides=[14, 14])
    flat = g.op("Flatten", pooled, axis=1)
    # Removing the overall brightness makes colour and texture, not exposure, what tells faces apart.
    centred = g.op("Sub", flat, g.op("ReduceMean", flat, axes=[1], keepdims=1))
    weights = g.const(rng.standard_normal((3 * 8 * 8, EMBEDDING_SIZE)) / np.sqrt(3 * 8 * 8))
    # A small bias keeps a featureless (uniform) crop from having a zero, unnormalisable embedding.
    bias = g.const(0.01 * rng.standard_normal(EMBEDDING_SIZE))
    g.output("Add", [g.op("MatMul", centred, weights), bias], "embedding")
    graph = helper.make_graph(
        g.nodes,
        "pooled_projection_recognizer",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["batch", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", EMBEDDING_SIZE])],
        g.initializers,
    )
    return _finish(graph)


def build_landmarker() -> onnx.ModelProto:
    """1k3d68-shaped landmark model: 1x3x192x192 -> 3309, always InsightFace's own mean 68-point face.

    The input enters through a term weighted 0, so the graph has a real path from it. The first two nodes
    normalise the pixels as buffalo_l's file does inside itself, so InsightFace feeds it raw 0-255 pixels
    (its Landmark class looks for leading nodes named Sub and Mul).
    """
    from insightface.data import get_object

    mean_face = np.asarray(get_object("meanshape_68.pkl"), dtype=np.float32)  # 68 x 3, in [-1, 1] of the crop
    points = np.zeros(LANDMARK_OUTPUTS, np.float32)
    points[-mean_face.size:] = mean_face.reshape(-1)
    g = _Graph()
    g.nodes.append(helper.make_node("Sub", ["data", g.const(127.5)], ["centred"], name="Sub_normalise"))
    g.nodes.append(helper.make_node("Mul", ["centred", g.const(1.0 / 128.0)], ["normalised"], name="Mul_normalise"))
    brightness = g.op("ReduceMean", g.op("Flatten", "normalised", axis=1), axes=[1], keepdims=1)
    g.output("Add", [g.op("Mul", brightness, g.const(0.0)), g.const(points[None])], "landmarks")
    side = LANDMARK_INPUT_SIDE
    graph = helper.make_graph(
        g.nodes,
        "mean_face_landmarker",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, [1, LANDMARK_OUTPUTS])],
        g.initializers,
    )
    return _finish(graph)


def _finish(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fineface-tests")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def write_model_pack(root: Path) -> Path:
    """Write the three models as `<root>/models/buffalo_l/`, the layout FaceEmbedder(root=...) reads."""
    pack = Path(root) / "models" / "buffalo_l"
    pack.mkdir(parents=True, exist_ok=True)
    onnx.save(build_detector(), pack / DETECTOR_FILE)
    onnx.save(build_recognizer(), pack / RECOGNIZER_FILE)
    onnx.save(build_landmarker(), pack / LANDMARK_FILE)
    return pack
