"""The install ends with exactly one ONNX Runtime build (insightface's CPU one overwrites the GPU one)."""

from importlib.metadata import PackageNotFoundError, version


def installed(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def test_exactly_one_onnxruntime_build_is_installed():
    builds = {name: installed(name) for name in ("onnxruntime", "onnxruntime-gpu")}
    assert sum(v is not None for v in builds.values()) == 1, builds


def test_the_gpu_build_is_present_where_cuda_is_used():
    import onnxruntime
    import torch

    if torch.cuda.is_available():
        assert installed("onnxruntime-gpu") is not None
        assert "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    else:
        assert "CPUExecutionProvider" in onnxruntime.get_available_providers()
