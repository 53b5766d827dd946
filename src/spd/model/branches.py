"""Task branches, written once for every family: an initial branch makes a task's first prediction
from a trunk feature, and each refinement stage takes the previous outputs of the task itself and
of its feeders (1x1 remaps) next to the task's feature, and predicts again. What the layers are is
the family's head design (:mod:`.heads`); how they connect is here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class InitialBranch(nn.Module):
    """``forward(features {name: map}) -> (output [B, C, h, w], task feature [B, D, h, w])``.

    ``feature`` makes the task's feature from the trunk map named ``source``; ``out`` makes the
    output from that feature or, with ``out_reads_source``, from the trunk map itself (JPPNet's
    parsing output, ``fc1_human``, reads res5 beside its feature convs)."""

    def __init__(self, source: str, feature: nn.Module, out: nn.Module, feature_channels: int,
                 out_reads_source: bool = False):
        super().__init__()
        # Registered in the order earlier versions did, so that their optimiser states still resume.
        if out_reads_source:
            self.out, self.feature = out, feature
        else:
            self.feature, self.out = feature, out
        self.source, self.out_reads_source, self.feature_channels = source, out_reads_source, feature_channels

    def drop_unused_feature(self) -> None:
        """With no refinement stage, a feature that the output does not read feeds nothing: its
        parameters would get no gradient (which DDP refuses), so it is not kept."""
        if self.out_reads_source:
            self.feature = None

    def forward(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = features[self.source]
        feature = None if self.feature is None else self.feature(x)
        return self.out(x if self.out_reads_source else feature), feature


class RefineBranch(nn.Module):
    """One refinement stage of one task: ``remaps[i]`` (1x1) of the previous outputs (own first, then
    the feeders'), concatenated with the task's previous feature; ``trunk`` makes the new feature,
    ``out`` the refined output. ``forward(previous, feature, trunk maps) -> (output, new feature)``
    (these branches read no trunk map; a family's own refinement may)."""

    def __init__(self, remaps: Sequence[nn.Module], trunk: nn.Module, out: nn.Module, feature_channels: int):
        super().__init__()
        self.remaps, self.trunk, self.out = nn.ModuleList(remaps), trunk, out
        self.feature_channels = feature_channels

    def forward(self, previous: Sequence[torch.Tensor], feature: torch.Tensor,
                maps: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([remap(p) for remap, p in zip(self.remaps, previous)] + [feature], dim=1)
        new_feature = self.trunk(x)
        return self.out(new_feature), new_feature
