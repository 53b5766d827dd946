"""A light top-down (FPN) decoder: every encoder stage is projected to one width, merged from the
coarsest down by upsampling and adding, and the finest map is smoothed by a 3x3 conv. Its
output, at the encoder's finest stride (4 for ResNets), is what every task branch reads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers import conv_bn_relu


class TopDownDecoder(nn.Module):
    """``forward([f_1, ..., f_n]) -> [B, width, H_1, W_1]`` (the resolution of f_1)."""

    def __init__(self, in_channels: Sequence[int], width: int):
        super().__init__()
        self.lateral = nn.ModuleList(conv_bn_relu(c, width, 1) for c in in_channels)
        self.smooth = conv_bn_relu(width, width, 3)
        self.out_channels = width

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[-1](features[-1])
        for lateral, f in zip(reversed(self.lateral[:-1]), reversed(features[:-1])):
            x = F.interpolate(x, size=f.shape[-2:], mode="bilinear", align_corners=False) + lateral(f)
        return self.smooth(x)
