"""A stand-in of LibreFace's AU network at its full size, for the benchmark: a ResNet-18 with its
512 -> 128 -> 12 head and sigmoid (the layers its authors' export notebook prints), random weights,
exported to ONNX under the real input and output names. It costs what the real network costs to run;
its readings mean nothing."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..faces.alignment import INPUT_SIDE
from ..faces.au_reader import INPUT_NAME, OUTPUT_AUS, OUTPUT_NAME


def conv_bn(inputs: int, outputs: int, kernel: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(outputs)]


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*conv_bn(inputs, outputs, 3, stride), nn.ReLU(), *conv_bn(outputs, outputs, 3, 1))
        self.skip = nn.Sequential(*conv_bn(inputs, outputs, 1, stride)) if stride != 1 or inputs != outputs \
            else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def resnet18_reader() -> nn.Module:
    widths = [64, 64, 128, 256, 512]
    # Four stages of two blocks; each stage but the first halves the size as it widens.
    stages = [block for i in range(4) for block in (BasicBlock(widths[i], widths[i + 1], 1 if i == 0 else 2),
                                                    BasicBlock(widths[i + 1], widths[i + 1], 1))]
    return nn.Sequential(*conv_bn(3, 64, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1), *stages,
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 128), nn.ReLU(),
                         nn.BatchNorm1d(128), nn.Linear(128, len(OUTPUT_AUS)), nn.Sigmoid()).eval()


def write_full_size_reader(path: Path) -> Path:
    path = Path(path)
    with torch.no_grad():
        torch.onnx.export(resnet18_reader(), (torch.zeros(1, 3, INPUT_SIDE, INPUT_SIDE),), str(path),
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamo=False)
    return path
