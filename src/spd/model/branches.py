"""Task branches: an initial prediction from backbone features, and refinement stages that take
the previous outputs of the task itself and of its feeders (docs/jppnet.md).

Head shapes are data (HEADS), scaled by the model's ``width``; JPPNet's are width 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .layers import ConvStack, DilatedSum, conv

HEADS = {
    "pose_trunk": [(3, 512), (3, 512), (3, 256), (3, 256), (3, 256), (3, 256)],  # pose_net; last = feature
    "pose_out": [(1, 512)],
    "parsing_feature": [(3, 512), (3, 256)],
    "refine_trunk": [(3, 512), (5, 256), (7, 256), (9, 256)],  # last = the stage's new feature
    "refine_out": [(1, 256)],
    "remap": 128,
}


def scaled(spec: Sequence[tuple[int, int]], width: float) -> list[tuple[int, int]]:
    return [(k, max(8, round(c * width))) for k, c in spec]


class OutputHead(nn.Module):
    """Parsing ends in the summed dilated convs; pose and DensePose in a 1x1 conv (no ReLU)."""

    def __init__(self, task: str, cin: int, cout: int, init: str = "jppnet"):
        super().__init__()
        self.head = DilatedSum(cin, cout, init=init) if task == "parsing" else conv(cin, cout, 1, relu=False, init=init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


class InitialBranch(nn.Module):
    """``forward(res4, res5) -> (output, feature)``.

    parsing:         output = fc1_human(res5) (summed dilated convs), feature = 3x3 512, 3x3 256 on res5
    pose, densepose: pose_net on res4: six 3x3 convs (feature = the 6th), 1x1 512, 1x1 -> outputs

    The parsing convs belong to JPPNet's backbone graph (kaffe layers) and start from Glorot.
    """

    def __init__(self, task: str, res4: int, res5: int, out_channels: int, width: float):
        super().__init__()
        self.task = task
        if task == "parsing":
            self.out = OutputHead(task, res5, out_channels, init="glorot")
            self.feature = ConvStack(res5, scaled(HEADS["parsing_feature"], width), init="glorot")
        else:
            self.feature = ConvStack(res4, scaled(HEADS["pose_trunk"], width))
            mid = ConvStack(self.feature.out_channels, scaled(HEADS["pose_out"], width))
            self.out = nn.Sequential(mid, OutputHead(task, mid.out_channels, out_channels))
        self.feature_channels = self.feature.out_channels

    def forward(self, res4: torch.Tensor, res5: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.task == "parsing":
            return self.out(res5), self.feature(res5)
        feature = self.feature(res4)
        return self.out(feature), feature


class RefineBranch(nn.Module):
    """One refinement stage of one task: 1x1 remaps (-> 128, ReLU) of the previous outputs (own
    first, then the feeders'), concatenated with the task's previous feature; 3x3 512, 5x5, 7x7,
    9x9 256 (new feature), 1x1 256, then the task's output head."""

    def __init__(self, task: str, input_channels: Sequence[int], feature_channels: int, out_channels: int,
                 width: float):
        super().__init__()
        remap = max(8, round(HEADS["remap"] * width))
        self.remaps = nn.ModuleList(conv(c, remap, 1) for c in input_channels)
        self.trunk = ConvStack(remap * len(input_channels) + feature_channels, scaled(HEADS["refine_trunk"], width))
        mid = ConvStack(self.trunk.out_channels, scaled(HEADS["refine_out"], width))
        self.out = nn.Sequential(mid, OutputHead(task, mid.out_channels, out_channels))
        self.feature_channels = self.trunk.out_channels

    def forward(self, previous: Sequence[torch.Tensor], feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([remap(p) for remap, p in zip(self.remaps, previous)] + [feature], dim=1)
        new_feature = self.trunk(x)
        return self.out(new_feature), new_feature
