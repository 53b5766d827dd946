"""PCKh@0.5 as used on LIP: per image, the normaliser is the Head_top - Neck
distance of the ground truth (images lacking either are left out); a joint is correct when its
error is at most 0.5 x normaliser; joints missing from the ground truth are excluded. No MPII
head-box 0.6 factor. As the de-facto LIP implementation, a ground-truth joint with a negative
coordinate counts as missing, and a group's figure (Head, Shoulder, ...) is the mean of its joints'
percentages, not the pooled count; Total pools its 14 joints."""

from __future__ import annotations

import torch

from ..labels import KeypointSpace


def pckh_update(pred: torch.Tensor, target: torch.Tensor, space: KeypointSpace,
                threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """pred, target [N, K, 2] (nan = missing) -> (correct [K], counted [K]) for these images."""
    target = torch.where((target < 0).any(-1, keepdim=True), torch.nan, target)
    top, neck = space.head_segment
    norm = (target[:, top] - target[:, neck]).norm(dim=-1)  # nan when either is missing
    usable = torch.isfinite(norm) & (norm > 0)
    present = torch.isfinite(target).all(-1) & usable[:, None]
    dist = (pred - target).norm(dim=-1)
    correct = present & torch.isfinite(dist) & (dist <= threshold * norm[:, None])
    return correct.sum(0).double(), present.sum(0).double()


def pckh_scores(correct: torch.Tensor, counted: torch.Tensor, space: KeypointSpace) -> dict[str, float]:
    """The LIP groups (the mean of their joints' percentages; a joint never seen is left out of the
    mean) and Total (every joint but Pelvis and Spine, pooled), in percent."""
    def pct(joints: list[int]) -> float:
        n = float(counted[joints].sum())
        return 100.0 * float(correct[joints].sum()) / n if n else float("nan")

    def group(joints: tuple[int, ...]) -> float:
        seen = [pct([j]) for j in joints if counted[j] > 0]
        return sum(seen) / len(seen) if seen else float("nan")

    scores = {name: group(joints) for name, joints in space.pckh_groups.items()}
    excluded = {space.index("Pelvis"), space.index("Spine")}
    scores["Total"] = pct([j for j in range(space.num_joints) if j not in excluded])
    return scores
