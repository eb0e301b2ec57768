"""GPU speed options: channels-last memory, torch.compile, CUDA graphs and fused Q/K/V projections, each an
explicit setting.

Each option is measured in docs/benchmarks.md and on by default only where it won on CUDA (fused projections:
on diffusers' plain UNet; issue 21's run measures this pipeline's side by side); all are off on the CPU and
on ZeroGPU Spaces (which do not support torch.compile).

Compiled code and captured graphs serve only the input layouts met during the warm-up at start-up
(the default size, one image): any other size or image count runs the model eagerly, so a user's
request never waits for a compile. diffusers' pipeline keeps calling the same UNet and decoder modules;
only their `forward` is routed.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator

import torch
from torch import nn

from .fused_projections import fuse

Runner = Callable[[tuple, dict], Any]


@dataclass(frozen=True)
class Acceleration:
    channels_last: bool = False  # NHWC tensors: cuDNN's native layout for fp16 convolutions
    compile: bool = False  # torch.compile (Inductor) for the UNet and the decoders (the VAE's, TAESD's)
    cuda_graphs: bool = False  # replay one captured graph per denoising step instead of ~1,000 launches
    fused_projections: bool = False  # one matrix product for Q, K and V (fused_projections.py)

    @classmethod
    def default_for(cls, device: torch.device, serving: bool = True) -> "Acceleration":
        """Everything that won on CUDA; nothing on the CPU or on ZeroGPU.

        Compiling costs a minute or two once and then saves about 130 ms per image, so only a
        server (`serving`) compiles; a one-off command keeps the graphs, whose capture takes 0.5 s.
        """
        if device.type != "cuda" or os.environ.get("SPACES_ZERO_GPU"):
            return cls()
        return cls(channels_last=True, compile=serving, cuda_graphs=True, fused_projections=True)

    @property
    def needs_warm_up(self) -> bool:
        return self.compile or self.cuda_graphs

    def __str__(self) -> str:
        names = {"channels_last": "channels-last", "compile": "compile", "cuda_graphs": "CUDA graphs",
                 "fused_projections": "fused QKV"}
        return " + ".join(label for field, label in names.items() if getattr(self, field)) or "eager"


class WarmedForward:
    """Stands in for a module's `forward`: a fast path for the input layouts met while warming up,
    the module's own eager forward for any other.

    `extra_key` names state the module reads besides its arguments (the adapters' request tensors),
    so that a graph is replayed only while that state lives where the graph was captured.
    """

    def __init__(self, module: nn.Module, acceleration: Acceleration,
                 extra_key: Callable[[], Hashable] = lambda: ()) -> None:
        self.eager = module.forward
        self.fast = torch.compile(self.eager, fullgraph=True, dynamic=False) if acceleration.compile else self.eager
        self.cuda_graphs = acceleration.cuda_graphs
        self.extra_key = extra_key
        self.runners: dict[Hashable, Runner] = {}
        self.warming = False
        module.forward = self  # nn.Module.__call__ finds the instance attribute before the class's method

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        key = (*map(_layout, args), *((name, _layout(v)) for name, v in sorted(kwargs.items())), self.extra_key())
        runner = self.runners.get(key)
        if runner is None:
            if not self.warming:
                return self.eager(*args, **kwargs)
            runner = self.runners[key] = self._capture(args, kwargs) if self.cuda_graphs else self._compiled
        return runner(args, kwargs)

    def _compiled(self, args: tuple, kwargs: dict) -> Any:
        return self.fast(*args, **kwargs)

    def _capture(self, args: tuple, kwargs: dict) -> Runner:
        """Capture one call as a CUDA graph; replays copy new inputs into the captured ones."""
        static_args = [_clone(value) for value in args]
        static_kwargs = {name: _clone(value) for name, value in kwargs.items()}
        # Compiling, autotuning and cuDNN's algorithm search cannot run inside a capture: do them first.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self.fast(*static_args, **static_kwargs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_output = self.fast(*static_args, **static_kwargs)
        static_inputs = [v for v in [*static_args, *static_kwargs.values()] if isinstance(v, torch.Tensor)]

        def replay(args: tuple, kwargs: dict) -> Any:
            inputs = [v for v in [*args, *(kwargs[name] for name in static_kwargs)] if isinstance(v, torch.Tensor)]
            for static, value in zip(static_inputs, inputs):
                static.copy_(value)
            graph.replay()
            # The next replay overwrites the graph's output; callers may keep theirs (PNDM keeps past outputs).
            return _clone(static_output)

        return replay

    def forget(self) -> None:
        """Drop compiled paths and graphs (the module moved, or its state was replaced)."""
        self.runners.clear()


def accelerate(unet: nn.Module, decoders: list[nn.Module], acceleration: Acceleration,
               unet_state_key: Callable[[], Hashable]) -> list[WarmedForward]:
    """Apply the options to a pipeline's UNet and its decoders (the VAE, TAESD for previews); returns the
    routed forwards to warm up."""
    for module in (unet, *decoders) if acceleration.channels_last else ():
        module.to(memory_format=torch.channels_last)
    if acceleration.fused_projections:
        fuse(unet)
    if not acceleration.needs_warm_up:
        return []
    return [WarmedForward(unet, acceleration, unet_state_key),
            *(WarmedForward(decoder.decoder, acceleration) for decoder in decoders)]


@contextmanager
def warming(forwards: list[WarmedForward]) -> Iterator[None]:
    """Within this block, calls of a new input layout compile (and capture) a fast path for it."""
    for forward in forwards:
        forward.warming = True
    try:
        yield
    finally:
        for forward in forwards:
            forward.warming = False


def _layout(value: Any) -> Hashable:
    """A tensor by its shape, strides, dtype and device; other arguments (None, flags) as they are."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape), value.stride(), value.dtype, value.device
    return value


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple):
        return tuple(_clone(item) for item in value)
    return value
