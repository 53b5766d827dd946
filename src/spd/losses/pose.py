"""Pose loss on heatmaps: JPPNet's per-image L2 norm, or the mean squared error; joints that are
missing (weight 0) and samples without pose contribute nothing."""

from __future__ import annotations

import torch

POSE_MODES = ("l2", "mse")


def pose_loss(pred: torch.Tensor, target: torch.Tensor, joint_weight: torch.Tensor, mode: str = "l2") -> torch.Tensor:
    """pred, target [B, K, h, w]; joint_weight [B, K] in {0, 1} -> scalar.

    ``l2``:  mean over samples with any joint of sqrt(sum_k,y,x w_k (t - p)^2)  (JPPNet)
    ``mse``: sum of w_k (t - p)^2 over the batch / (h * w * number of weighted joints)
    """
    sq = (pred.float() - target.float()) ** 2 * joint_weight[:, :, None, None]
    if mode == "l2":
        per_image = sq.flatten(1).sum(1)
        has = joint_weight.sum(1) > 0
        # sqrt has no derivative at 0: images without joints are left out before taking it.
        norms = torch.sqrt(torch.where(has, per_image, 1.0))
        return (norms * has).sum() / has.sum().clamp_min(1)
    if mode == "mse":
        return sq.sum() / (joint_weight.sum() * pred.shape[-1] * pred.shape[-2]).clamp_min(1)
    raise ValueError(f"unknown pose loss {mode!r}; expected one of {POSE_MODES}")
