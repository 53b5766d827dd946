"""DensePose losses: cross-entropy on the part index, and smooth-L1 on the ground-truth part's U, V
channel at foreground pixels whose U, V are valid (not mirrored, not padding)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..labels import IGNORE_INDEX
from .parsing import parsing_loss
from .targets import resize_nearest


def dp_index_loss(logits: torch.Tensor, target: torch.Tensor, has_target: torch.Tensor,
                  at: str = "output", resize: str = "centred",
                  part_weights: torch.Tensor | None = None) -> torch.Tensor:
    """logits [B, 25, h, w]; target [B, H, W] (255 ignore) -> scalar; ``at``, ``resize`` and the
    class weights as :func:`parsing_loss`."""
    return parsing_loss(logits, target, has_target, at, resize, part_weights)


def dp_uv_loss(pred_uv: torch.Tensor, index: torch.Tensor, uv: torch.Tensor, valid: torch.Tensor,
               beta: float = 1.0 / 9.0) -> torch.Tensor:
    """pred_uv [B, 2, 24, h, w]; index [B, H, W]; uv [B, 2, H, W]; valid [B, H, W] bool -> scalar,
    the mean smooth-L1 over the valid foreground pixels (0 when there are none), the labels
    nearest-resized to the prediction's grid."""
    size = pred_uv.shape[-2:]
    index = resize_nearest(index, size).long()
    uv = resize_nearest(uv, size)
    valid = resize_nearest(valid, size) & (index > 0) & (index != IGNORE_INDEX)
    part = (index.clamp(1, pred_uv.shape[2]) - 1)[:, None, None]  # [B, 1, 1, h, w]
    chosen = pred_uv.float().gather(2, part.expand(-1, 2, 1, -1, -1))[:, :, 0]  # [B, 2, h, w]
    loss = F.smooth_l1_loss(chosen, uv.float(), beta=beta, reduction="none").sum(1)
    return (loss * valid).sum() / valid.sum().clamp_min(1)
