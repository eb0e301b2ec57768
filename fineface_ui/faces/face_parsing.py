"""Face parsing with BiSeNet, the network MagicFace uses to tell the face from what surrounds it.

It labels every pixel of a 512x512 RGB face photo with one of the 19 CelebAMask-HQ classes. The weights
are `79999_iter.pth` from zllrunning/face-parsing.PyTorch (a pickled state dict, 191 tensors, 13.3 M
parameters), which the Hub repo mengtingwei/magicface also hosts at its root. The network is written here
afresh with the same key names, so the file loads as it is, and nothing is downloaded on construction.

Licence: the original code is MIT, but the weights were trained on CelebAMask-HQ, whose images may be used
for non-commercial research only; treat the weights, and the masks they produce, as bound by that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..engine.checkpoints import load_checked, read_state_dict

PARSER_SIDE = 512
NUM_CLASSES = 19
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Label i is CLASS_NAMES[i]: 0 is background, then the CelebAMask-HQ parts in the order that
# face-parsing.PyTorch's prepropess_data.py numbers them from 1.
CLASS_NAMES = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)  # eye_g: glasses, ear_r: earring, neck_l: necklace

# The classes MagicFace blacks out to keep only the background (utils/retrieve_bg.py, keep_background):
# skin, both brows, both eyes, glasses, nose, mouth, both lips, and the necklace (15). It keeps background,
# ears (7, 8), earring (9), neck (14), cloth (16), hair (17) and hat (18).
FACE_CLASSES = (1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 15)


def _global_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3), keepdim=True)


class _ConvBNReLU(nn.Module):
    """Convolution without bias, batch norm, ReLU; `same` padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class _ResidualBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions, with a strided 1x1 projection where the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + branch)


class ResNet18Features(nn.Module):
    """ResNet-18 without its classifier (torchvision's key layout), giving the 1/8, 1/16 and 1/32 features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._stage(64, 64, stride=1)
        self.layer2 = self._stage(64, 128, stride=2)
        self.layer3 = self._stage(128, 256, stride=2)
        self.layer4 = self._stage(256, 512, stride=2)

    @staticmethod
    def _stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            _ResidualBlock(in_channels, out_channels, stride), _ResidualBlock(out_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), kernel_size=3, stride=2, padding=1)
        eighth = self.layer2(self.layer1(x))
        sixteenth = self.layer3(eighth)
        return eighth, sixteenth, self.layer4(sixteenth)


class _AttentionRefinement(nn.Module):
    """A 3x3 conv whose channels are reweighted by a sigmoid gate computed from their global average."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = _ConvBNReLU(in_channels, out_channels)
        self.conv_atten = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x)
        return features * torch.sigmoid(self.bn_atten(self.conv_atten(_global_mean(features))))


class _ContextPath(nn.Module):
    """The backbone's deep features, refined and carried back up to 1/8 and 1/16 of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.resnet = ResNet18Features()
        self.arm16 = _AttentionRefinement(256, 128)
        self.arm32 = _AttentionRefinement(512, 128)
        self.conv_head32 = _ConvBNReLU(128, 128)
        self.conv_head16 = _ConvBNReLU(128, 128)
        self.conv_avg = _ConvBNReLU(512, 128, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        eighth, sixteenth, thirty_second = self.resnet(x)
        context = self.conv_avg(_global_mean(thirty_second))  # 1x1, broadcast over the map below
        up_from_32 = self.arm32(thirty_second) + context
        up_from_32 = self.conv_head32(F.interpolate(up_from_32, size=sixteenth.shape[2:], mode="nearest"))
        up_from_16 = self.arm16(sixteenth) + up_from_32
        up_from_16 = self.conv_head16(F.interpolate(up_from_16, size=eighth.shape[2:], mode="nearest"))
        return eighth, up_from_16, up_from_32


class _FeatureFusion(nn.Module):
    """Concatenates two 1/8 feature maps, mixes them, and boosts channels by a squeeze-excitation gate."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convblk = _ConvBNReLU(in_channels, out_channels, kernel_size=1)
        self.conv1 = nn.Conv2d(out_channels, out_channels // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels // 4, out_channels, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        fused = self.convblk(torch.cat([spatial, context], dim=1))
        gate = torch.sigmoid(self.conv2(F.relu(self.conv1(_global_mean(fused)))))
        return fused * (1 + gate)


class _ClassifierHead(nn.Module):
    """A 3x3 conv block, then a 1x1 conv to one logit per class."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = _ConvBNReLU(in_channels, mid_channels)
        self.conv_out = nn.Conv2d(mid_channels, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """face-parsing.PyTorch's BiSeNet (ResNet-18 context path; the backbone's 1/8 features stand in for the
    spatial path). `forward` returns the main head's class logits at the input's size."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.cp = _ContextPath()
        self.ffm = _FeatureFusion(256, 256)
        self.conv_out = _ClassifierHead(256, 256, num_classes)
        # The auxiliary heads only served training; they are here because the file holds their weights.
        self.conv_out16 = _ClassifierHead(128, 64, num_classes)
        self.conv_out32 = _ClassifierHead(128, 64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eighth, context_eighth, _ = self.cp(x)
        logits = self.conv_out(self.ffm(eighth, context_eighth))
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=True)


def load_face_parser(path: Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> BiSeNet:
    """BiSeNet with the weights of `path` (every key of the file and of the model matched), in eval mode."""
    path = Path(path)
    state = read_state_dict(path)
    with torch.device("meta"):  # no random initialisation: every weight comes from the file
        parser = BiSeNet()
    parser = parser.to_empty(device="cpu")
    load_checked(parser, path, state)
    return parser.to(device=device, dtype=dtype).eval()


def parse_face(parser: BiSeNet, rgb: np.ndarray) -> np.ndarray:
    """The (512, 512) uint8 class map of a 512x512x3 uint8 RGB face (the argmax of the main head)."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.shape != (PARSER_SIDE, PARSER_SIDE, 3):
        shown = f"{rgb.dtype} array of shape {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(f"Face parsing takes a {PARSER_SIDE}x{PARSER_SIDE}x3 uint8 RGB image, not a {shown}.")
    weight = parser.cp.resnet.conv1.weight
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    pixels = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float() / 255
    with torch.inference_mode():
        logits = parser(((pixels - mean) / std).to(device=weight.device, dtype=weight.dtype))
        labels = logits[0].argmax(dim=0)
    return labels.to(device="cpu", dtype=torch.uint8).numpy()


def face_region(labels: np.ndarray) -> np.ndarray:
    """True where a class map shows one of FACE_CLASSES (the part MagicFace blacks out)."""
    return np.isin(labels, FACE_CLASSES)
