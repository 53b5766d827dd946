"""Pose loss on heatmaps: JPPNet's per-image L2 norm; joints that are missing (weight 0) and samples
without pose contribute nothing."""

from __future__ import annotations

import torch


def pose_loss(pred: torch.Tensor, target: torch.Tensor, joint_weight: torch.Tensor) -> torch.Tensor:
    """pred, target [B, K, h, w]; joint_weight [B, K] in {0, 1} -> scalar: the mean over samples with
    any joint of sqrt(sum_k,y,x w_k (t - p)^2) (JPPNet)."""
    sq = (pred.float() - target.float()) ** 2 * joint_weight[:, :, None, None]
    per_image = sq.flatten(1).sum(1)
    has = joint_weight.sum(1) > 0
    # sqrt has no derivative at 0: images without joints are left out before taking it.
    norms = torch.sqrt(torch.where(has, per_image, 1.0))
    return (norms * has).sum() / has.sum().clamp_min(1)
