"""Convolution building blocks (stride 1, "same" padding).

The dilated family's heads (:func:`conv`, :class:`ConvStack`, :class:`DilatedSum`) have biases and
no batch norm, initialised as JPPNet's code: ``"jppnet"`` convs (its ``conv2d`` helper) draw weights from a
normal of std 0.01 truncated at 2 std, biases 0; ``"glorot"`` convs (its kaffe layers, which pass
no initialiser) take TensorFlow's default, Glorot uniform, for weights and biases alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..ops.tf import glorot_uniform_, truncated_normal_

INITS = ("jppnet", "glorot")


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, dilation: int = 1) -> nn.Sequential:
    """The fpn family trains from scratch, so its convs carry batch norm (He-initialised)."""
    layer = nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False)
    nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    return nn.Sequential(layer, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def conv(cin: int, cout: int, kernel: int, dilation: int = 1, relu: bool = True, init: str = "jppnet") -> nn.Module:
    layer = nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation)
    if init == "glorot":
        glorot_uniform_(layer.weight)
        glorot_uniform_(layer.bias)
    else:
        truncated_normal_(layer.weight, std=0.01)
        nn.init.zeros_(layer.bias)
    return nn.Sequential(layer, nn.ReLU(inplace=True)) if relu else layer


class ConvStack(nn.Sequential):
    """Convs with ReLU from a spec of (kernel, out_channels); ``out_channels`` is the last width."""

    def __init__(self, cin: int, spec: Sequence[tuple[int, int]], init: str = "jppnet"):
        layers = []
        for kernel, cout in spec:
            layers.append(conv(cin, cout, kernel, init=init))
            cin = cout
        super().__init__(*layers)
        self.out_channels = cin


class DilatedSum(nn.Module):
    """DeepLab-v2 ASPP as JPPNet uses it: parallel 3x3 convs at several rates, summed, no ReLU."""

    def __init__(self, cin: int, cout: int, rates: Sequence[int] = (6, 12, 18, 24), init: str = "jppnet"):
        super().__init__()
        self.branches = nn.ModuleList(conv(cin, cout, 3, dilation=r, relu=False, init=init) for r in rates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([b(x) for b in self.branches]).sum(0)
