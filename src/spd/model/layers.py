"""Convolution building blocks of the heads (stride 1, "same" padding, bias, no batch norm)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def conv(cin: int, cout: int, kernel: int, dilation: int = 1, relu: bool = True) -> nn.Module:
    layer = nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation)
    nn.init.normal_(layer.weight, std=0.01)  # JPPNet's initialisation
    nn.init.zeros_(layer.bias)
    return nn.Sequential(layer, nn.ReLU(inplace=True)) if relu else layer


class ConvStack(nn.Sequential):
    """Convs with ReLU from a spec of (kernel, out_channels); ``out_channels`` is the last width."""

    def __init__(self, cin: int, spec: Sequence[tuple[int, int]]):
        layers = []
        for kernel, cout in spec:
            layers.append(conv(cin, cout, kernel))
            cin = cout
        super().__init__(*layers)
        self.out_channels = cin


class DilatedSum(nn.Module):
    """DeepLab-v2 ASPP as JPPNet uses it: parallel 3x3 convs at several rates, summed, no ReLU."""

    def __init__(self, cin: int, cout: int, rates: Sequence[int] = (6, 12, 18, 24)):
        super().__init__()
        self.branches = nn.ModuleList(conv(cin, cout, 3, dilation=r, relu=False) for r in rates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([b(x) for b in self.branches]).sum(0)
