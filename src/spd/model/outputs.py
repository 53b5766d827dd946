"""Typed model outputs, and how one forward pass's stages become one output at test time."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..ops.validation import require_choice
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
            # float32 whatever the autocast: U, V near 0 or 1 lose their precision in bf16
            out.dp_uv = torch.sigmoid(dense[:, NUM_DP_PARTS + 1:].float()).reshape(b, 2, NUM_DP_PARTS, h, w)
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


STAGE_CHOICES = ("all", "final")
MEAN_OVER_STAGES = ("parsing", "dp_index")  # logits; heatmaps and U, V are read from the final stage


def fuse_stages(stages: list[StageOutput], which: str = "all") -> StageOutput:
    """The test-time output of one forward pass: the parsing and part-index logits averaged over the
    chosen stages (``"all"``, as JPPNet's evaluation, or ``"final"``); pose heatmaps and U, V from
    the final stage (earlier stages' heatmaps are cruder). The Predictor, evaluation and export
    all fuse through here."""
    require_choice("stages", which, STAGE_CHOICES)
    chosen = stages if which == "all" else stages[-1:]
    final = stages[-1]
    out = StageOutput(pose=final.pose, dp_uv=final.dp_uv)
    for name in MEAN_OVER_STAGES:
        if getattr(final, name) is not None:
            setattr(out, name, torch.stack([getattr(s, name) for s in chosen]).float().mean(0))
    return out
