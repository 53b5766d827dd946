"""Parsing loss: pixel cross-entropy ignoring 255, labels nearest-resized to the logits' grid (as
JPPNet), samples without a parsing target excluded."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..labels import IGNORE_INDEX
from .targets import resize_nearest


def parsing_loss(logits: torch.Tensor, target: torch.Tensor, has_target: torch.Tensor) -> torch.Tensor:
    """logits [B, C, h, w]; target [B, H, W] int64 (255 ignore); has_target [B] bool -> scalar,
    the mean over the labelled pixels of the batch (0 when there are none)."""
    target = resize_nearest(target, logits.shape[-2:])
    target = torch.where(has_target[:, None, None], target, IGNORE_INDEX)
    total = F.cross_entropy(logits.float(), target, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (target != IGNORE_INDEX).sum().clamp_min(1)
