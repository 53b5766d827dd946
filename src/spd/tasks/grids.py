"""Resizing dense targets to a prediction's grid; every task's targets go through here.
``centred`` (consistent with align_corners=False: output cell j takes the input pixel under its
centre; heatmaps bilinear) or ``tf_legacy`` (JPPNet: TF1's nearest neighbour, the top-left input
pixel, for labels and heatmaps alike)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ops.tf import legacy_nearest_resize

TARGET_RESIZES = ("centred", "tf_legacy")


def resize_nearest(target: torch.Tensor, size: tuple[int, int], how: str = "centred") -> torch.Tensor:
    """[B, H, W] or [B, C, H, W] -> same rank at ``size``, same dtype."""
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    if how == "tf_legacy":
        return legacy_nearest_resize(target, size)
    x = target[:, None] if target.ndim == 3 else target
    out = F.interpolate(x.float(), size=size, mode="nearest-exact")
    out = out[:, 0] if target.ndim == 3 else out
    return out.to(target.dtype)


def resize_heatmaps(target: torch.Tensor, size: tuple[int, int], how: str = "centred") -> torch.Tensor:
    """[B, C, H, W] float maps -> [B, C, *size]: bilinear, or TF1's nearest for ``tf_legacy``."""
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    if how == "tf_legacy":
        return legacy_nearest_resize(target, size)
    return F.interpolate(target.float(), size=size, mode="bilinear", align_corners=False)
