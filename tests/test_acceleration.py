"""GPU speed options on the CPU: defaults, in-place request tensors, the compiled fast path, out of memory.

CUDA graphs cannot run here; `python -m fineface_ui.bench --device cuda --full-size` checks them on a GPU
(docs/benchmarks.md: graph replays match eager renders and follow new AUs).
"""

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from fineface_ui import FineFacePipeline
from fineface_ui.engine.acceleration import Acceleration
from fineface_ui.engine.attention import FineFaceAttnProcessor
from fineface_ui.errors import GPUMemoryError


def test_speed_options_are_on_for_cuda_only_and_off_on_zero_gpu(monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert Acceleration.default_for(torch.device("cpu")) == Acceleration()
    assert Acceleration.default_for(torch.device("cuda")) == Acceleration(True, True, True, True)
    # A one-off command does not wait a minute for a compile that serves one image.
    assert Acceleration.default_for(torch.device("cuda"), serving=False) == Acceleration(True, False, True, True)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert Acceleration.default_for(torch.device("cuda")) == Acceleration()


def test_a_pinned_layout_is_rewritten_in_place_and_other_layouts_leave_it_alone():
    processor = FineFaceAttnProcessor(hidden_size=8, token_dim=16)
    first, second = torch.randn(2, 1, 16), torch.randn(2, 1, 16)
    processor.begin_request(first, 1.0)
    processor.pin_request_tensors()
    pinned = processor.request_tensors()["au_term"]
    processor.end_request()

    processor.begin_request(second, 0.5)
    term = processor.request_tensors()["au_term"]
    assert term.data_ptr() == pinned.data_ptr()  # where a captured CUDA graph reads it
    torch.testing.assert_close(term, 0.5 * processor.au_to_v(second))

    processor.begin_request(torch.randn(4, 1, 16), 1.0)  # a sweep: another batch layout, not pinned
    assert processor.request_tensors()["au_term"].data_ptr() != pinned.data_ptr()
    torch.testing.assert_close(pinned, 0.5 * processor.au_to_v(second))


@pytest.fixture(scope="module")
def compiled_pipe(sd21_files):
    counters.clear()
    return FineFacePipeline.from_pretrained(**sd21_files, device="cpu", acceleration=Acceleration(
        channels_last=True, compile=True, fused_projections=True))  # all of CUDA's options but its graphs


@pytest.fixture
def compiled_unet_calls(compiled_pipe, monkeypatch):
    """Counts the UNet calls that take the compiled path."""
    unet_forward = compiled_pipe.sd.unet.forward
    calls = []
    compiled = unet_forward.fast
    monkeypatch.setattr(unet_forward, "fast", lambda *a, **k: calls.append(1) or compiled(*a, **k))
    return calls


def test_the_compiled_path_follows_new_aus_without_recompiling(compiled_pipe, sd21_pipe, compiled_unet_calls, pixels):
    graphs_after_warm_up = counters["stats"]["unique_graphs"]
    options = {"seed": 3, "num_inference_steps": 3}  # the warmed-up layout: 512x512, one image
    smile = compiled_pipe("a face", {"AU12": 5}, **options).images[0]
    frown = compiled_pipe("a face", {"AU12": -5}, **options).images[0]
    assert len(compiled_unet_calls) == 6  # every denoising step took the compiled path
    assert counters["stats"]["unique_graphs"] == graphs_after_warm_up
    assert not np.array_equal(pixels(smile), pixels(frown))
    for image, aus in ((smile, {"AU12": 5}), (frown, {"AU12": -5})):
        eager = sd21_pipe("a face", aus, **options).images[0]
        assert np.abs(pixels(image) - pixels(eager)).max() <= 2


def test_another_size_runs_eagerly_instead_of_compiling(compiled_pipe, sd21_pipe, compiled_unet_calls, fast, pixels):
    graphs_after_warm_up = counters["stats"]["unique_graphs"]
    image = compiled_pipe("a face", {"AU6": 3}, seed=4, **fast).images[0]
    assert compiled_unet_calls == [] and counters["stats"]["unique_graphs"] == graphs_after_warm_up
    eager = sd21_pipe("a face", {"AU6": 3}, seed=4, **fast).images[0]
    assert np.abs(pixels(image) - pixels(eager)).max() <= 2  # channels-last convolutions round differently


def test_a_preview_decodes_through_the_compiled_taesd_path(compiled_pipe, sd21_pipe, monkeypatch, pixels):
    decoder_forward = compiled_pipe.preview_decoder.decoder.forward
    compiled, calls = decoder_forward.fast, []
    monkeypatch.setattr(decoder_forward, "fast", lambda *a, **k: calls.append(1) or compiled(*a, **k))
    preview = compiled_pipe.preview("a face", {"AU12": 4}, seed=3, num_inference_steps=3)[0]
    assert calls == [1]  # the warmed layout (512x512, one image) was met at start-up
    eager = sd21_pipe.preview("a face", {"AU12": 4}, seed=3, num_inference_steps=3)[0]
    assert np.abs(pixels(preview) - pixels(eager)).max() <= 2


def test_out_of_memory_is_a_readable_error_and_the_next_request_runs(sd21_pipe, monkeypatch, fast, pixels):
    before = sd21_pipe("a face", {"AU12": 2}, seed=6, **fast).images[0]

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(sd21_pipe.sd.unet, "forward", out_of_memory)
    with pytest.raises(GPUMemoryError, match="GPU out of memory: try a smaller image size"):
        sd21_pipe("a face", [{"AU12": v} for v in range(8)], seed=6, **fast)
    monkeypatch.undo()
    after = sd21_pipe("a face", {"AU12": 2}, seed=6, **fast).images[0]
    assert np.array_equal(pixels(before), pixels(after))


def test_to_casts_every_component_to_the_dtype(sd21_files):
    pipe = FineFacePipeline.from_pretrained(**sd21_files, device="cpu").to(torch.device("cpu"), torch.float16)
    assert pipe.dtype == torch.float16
    for module in (pipe.sd.unet, pipe.sd.vae, pipe.sd.text_encoder, pipe.au_encoder, *pipe.adapters.values()):
        assert {p.dtype for p in module.parameters()} == {torch.float16}
