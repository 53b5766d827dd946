"""Resizing dense targets to a prediction's grid (nearest, consistent with align_corners=False:
output cell j takes the input pixel under its centre)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_nearest(target: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, H, W] or [B, C, H, W] -> same rank at ``size``, same dtype."""
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    x = target[:, None] if target.ndim == 3 else target
    out = F.interpolate(x.float(), size=size, mode="nearest-exact")
    out = out[:, 0] if target.ndim == 3 else out
    return out.to(target.dtype)


def resize_bilinear(target: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, C, H, W] float maps (heatmaps) -> [B, C, *size]."""
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    return F.interpolate(target.float(), size=size, mode="bilinear", align_corners=False)
