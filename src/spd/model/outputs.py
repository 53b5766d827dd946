"""Typed model outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .config import NUM_DP_PARTS


@dataclass
class StageOutput:
    """One stage's predictions (None for a task the model does not have).

    parsing:  [B, C, h, w] logits
    pose:     [B, K, h, w] heatmaps
    dp_index: [B, 25, h, w] DensePose part logits (0 = background)
    dp_uv:    [B, 2, 24, h, w] U and V of each part (channel p-1 for part p), in [0, 1]
    """

    parsing: torch.Tensor | None = None
    pose: torch.Tensor | None = None
    dp_index: torch.Tensor | None = None
    dp_uv: torch.Tensor | None = None

    @classmethod
    def from_raw(cls, raw: dict[str, torch.Tensor]) -> "StageOutput":
        out = cls(parsing=raw.get("parsing"), pose=raw.get("pose"))
        dense = raw.get("densepose")
        if dense is not None:
            out.dp_index = dense[:, : NUM_DP_PARTS + 1]
            b, _, h, w = dense.shape
            out.dp_uv = torch.sigmoid(dense[:, NUM_DP_PARTS + 1:]).reshape(b, 2, NUM_DP_PARTS, h, w)
        return out


@dataclass
class ModelOutput:
    """``stages[i]``: stage i (0 = initial), fused over input scales. ``scales[s][i]``: the same
    at input scale ``s``, present only when the model runs at more than one scale."""

    stages: list[StageOutput]
    scales: dict[float, list[StageOutput]] = field(default_factory=dict)

    @property
    def final(self) -> StageOutput:
        return self.stages[-1]
