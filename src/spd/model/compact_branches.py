"""Task branches of the CPU family. They read the decoder's stride-4 feature and, like the
full-size branches, make an initial prediction and then refine it in stages that take the
previous outputs of the task itself and of its feeders (1x1 remaps) next to the task's feature."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .decoder import conv_bn_relu


def output_conv(cin: int, cout: int) -> nn.Conv2d:
    # PyTorch's default initialisation (uniform, fan-in scaled). N(0, 0.01) weights, which give
    # near-uniform initial logits, learned a third slower from scratch: 9.9 against 14.2 mIoU
    # after 300 CPU s for cpu_s without refinement (benchmarks/bench_learning.py).
    return nn.Conv2d(cin, cout, 1)


class CompactInitialBranch(nn.Module):
    """``forward(feature [B, D, h, w]) -> (output [B, C, h, w], task feature [B, width, h, w])``:
    ``convs`` 3x3 convs make the task's feature, a 1x1 conv its output."""

    def __init__(self, in_channels: int, out_channels: int, width: int, convs: int = 2):
        super().__init__()
        self.trunk = nn.Sequential(*(conv_bn_relu(in_channels if i == 0 else width, width) for i in range(convs)))
        self.out = output_conv(width, out_channels)
        self.feature_channels = width

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.trunk(feature)
        return self.out(feature), feature


class CompactRefineBranch(nn.Module):
    """One refinement stage: 1x1 remaps of the previous outputs (own first, then the feeders'),
    concatenated with the task's previous feature; a conv of kernel ``fuse`` (3, or 1 at a ninth
    of the cost) and a dilated 3x3 conv (wider context at no extra cost) make the new feature, a
    1x1 conv the refined output."""

    def __init__(self, input_channels: Sequence[int], feature_channels: int, out_channels: int, width: int,
                 remap: int, fuse: int = 3):
        super().__init__()
        self.remaps = nn.ModuleList(conv_bn_relu(c, remap, 1) for c in input_channels)
        self.trunk = nn.Sequential(conv_bn_relu(remap * len(input_channels) + feature_channels, width, fuse),
                                   conv_bn_relu(width, width, dilation=2))
        self.out = output_conv(width, out_channels)
        self.feature_channels = width

    def forward(self, previous: Sequence[torch.Tensor], feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([remap(p) for remap, p in zip(self.remaps, previous)] + [feature], dim=1)
        new_feature = self.trunk(x)
        return self.out(new_feature), new_feature
