"""The backbone networks of seed 003 (supplement §A, Table 1): audio network and video network.

**Audio network** (Table 1a, "similar to [1]"): 3-D convolutions over a ``(segments,
frames, mel bands)`` log-mel volume, ``10 x 100 x 80`` for 10 s (seed 003 §B), every
kernel 1 along the segment axis, so segments do not mix. "Batch Normalization and ReLU
activation function are used after every convolution layer": each row of Table 1a with
filters (conv1-conv7, fc8, fc9; fc8 and fc9 are 1 x 1 x 1 convolutions) is a convolution
without bias, then batch norm, then ReLU. The output is ``512 x 10 x 10 x 1``: ten
positions per segment, the "100 x 1" of the table. The module names (``conv1.0`` …
``fc9.1``) are ours: no public release of this network exists, so its weights come from a
user's checkpoint.

**Video network** (Table 1b): "identical to MCx [11], borrowed from official PyTorch
implementation (mc3_18)": torchvision's ``mc3_18`` — a ResNet-18 whose stem and first
stage use 3 x 3 x 3 convolutions and whose later stages use 1 x 3 x 3 ones, with temporal
stride 1 everywhere, so that 100 frames of 112 x 112 give ``512 x 100 x 7 x 7`` before the
spatial average pool. It is written here, not imported from torchvision, because the
torchvision wheel of the package registry is a CUDA build that fails to import beside this
project's CPU torch; its module names are torchvision's (``stem.0``, ``layer1.0.conv1.0``,
``layer2.0.downsample.0``, …), so a torchvision ``mc3_18`` state dict loads with
``load_state_dict(strict=True)`` once its classification layer (:data:`VIDEO_HEAD_PREFIXES`)
is set aside. :meth:`VideoNet.forward` returns the maps before the average pool: the AVE
store keeps 7 x 7 maps (docs/design.md §3).

Row-to-module map of Table 1b: conv1 = ``stem``; conv2-conv5 = ``layer1.{0,1}.conv{1,2}``;
conv6, conv7, res-conv8, conv9, conv10 = ``layer2.0.conv1``, ``layer2.0.conv2``,
``layer2.0.downsample``, ``layer2.1.conv1``, ``layer2.1.conv2``; likewise conv11-conv15 in
``layer3`` and conv16-conv20 in ``layer4``.
"""

from collections import OrderedDict

import torch
from torch import nn

AUDIO_DIM = 512
MAP_CHANNELS = 512
VIDEO_STRIDE = 16  # the 7 x 7 maps are 1/16 of the 112 x 112 input
VIDEO_HEAD_PREFIXES = ("fc.",)  # torchvision's classification layer, unused for features
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)

# Table 1a: (name, filters, kernel, stride, padding); filters None = max-pool.
AUDIO_LAYERS = (
    ("conv1", 64, (1, 3, 3), (1, 2, 1), (0, 1, 1)),
    ("conv2", 64, (1, 3, 3), (1, 1, 2), (0, 1, 1)),
    ("maxpool2", None, (1, 1, 3), (1, 1, 2), (0, 0, 0)),
    ("conv3", 192, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
    ("maxpool3", None, (1, 3, 3), (1, 2, 2), (0, 0, 0)),
    ("conv4", 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
    ("conv5", 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
    ("conv6", 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
    ("maxpool6", None, (1, 3, 2), (1, 2, 2), (0, 0, 0)),
    ("conv7", 512, (1, 4, 4), (1, 1, 1), (0, 1, 0)),
    ("fc8", 512, (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("fc9", 512, (1, 1, 1), (1, 1, 1), (0, 0, 0)),
)
AUDIO_POSITIONS = 10  # output positions per segment (Table 1a: 10 x 10 x 1 for 10 segments)


def _conv_bn_relu(channels: int, filters: int, kernel, stride, padding) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(channels, filters, kernel, stride, padding, bias=False),
        nn.BatchNorm3d(filters),
        nn.ReLU(inplace=True),
    )


class AudioNet(nn.Sequential):
    """Seed 003's audio network (Table 1a) on log-mel volumes.

    Input ``(B, T, 100, 80)``: ``T`` one-second segments of 100 log-mel frames x 80 bands
    (:func:`pipeline.features.audio.seed003_log_mel` reshaped). Output ``(B, 512, T, 10, 1)``.
    """

    def __init__(self) -> None:
        layers: list[tuple[str, nn.Module]] = []
        channels = 1
        for name, filters, kernel, stride, padding in AUDIO_LAYERS:
            if filters is None:
                layers.append((name, nn.MaxPool3d(kernel, stride, padding)))
            else:
                layers.append((name, _conv_bn_relu(channels, filters, kernel, stride, padding)))
                channels = filters
        super().__init__(OrderedDict(layers))

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``(B, T, 100, 80)`` log-mel → ``(B, 512, T, 10, 1)`` features."""
        return super().forward(log_mel.unsqueeze(1))  # (B, 512, T, 10, 1)


def _video_conv(channels: int, filters: int, temporal: bool, stride: int = 1) -> nn.Conv3d:
    """mc3_18's 3 x 3 x 3 (``temporal``) or 1 x 3 x 3 convolution with spatial ``stride``."""
    if temporal:
        return nn.Conv3d(channels, filters, 3, (stride, stride, stride), 1, bias=False)
    return nn.Conv3d(channels, filters, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)


class BasicBlock(nn.Module):
    """A residual block of mc3_18: two convolutions with batch norm, a shortcut, a ReLU."""

    def __init__(self, channels: int, filters: int, temporal: bool, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            _video_conv(channels, filters, temporal, stride),
            nn.BatchNorm3d(filters),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(_video_conv(filters, filters, temporal), nn.BatchNorm3d(filters))
        self.downsample = None
        if stride != 1 or channels != filters:
            spatial = (stride, stride, stride) if temporal else (1, stride, stride)
            self.downsample = nn.Sequential(
                nn.Conv3d(channels, filters, 1, spatial, bias=False), nn.BatchNorm3d(filters)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` → ``(B, filters, T', H', W')``."""
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + shortcut)


class VideoNet(nn.Module):
    """Seed 003's video network (Table 1b), torchvision's mc3_18 without its pool and head.

    Input: ``(B, 3, F, 112, 112)`` RGB frames in ``[0, 1]`` normalised with the Kinetics
    mean and standard deviation (:data:`KINETICS_MEAN`, :data:`KINETICS_STD`), the
    normalisation of torchvision's video models.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(inplace=True),
        )
        self.layer1 = nn.Sequential(BasicBlock(64, 64, True), BasicBlock(64, 64, True))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, False, 2), BasicBlock(128, 128, False))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, False, 2), BasicBlock(256, 256, False))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, False, 2), BasicBlock(512, 512, False))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, 3, F, H, W)`` frames → ``(B, 512, F, H / 16, W / 16)`` maps (before avgpool)."""
        x = self.stem(frames)  # (B, 64, F, H / 2, W / 2)
        x = self.layer2(self.layer1(x))  # (B, 128, F, H / 4, W / 4)
        return self.layer4(self.layer3(x))  # (B, 512, F, H / 16, W / 16)
