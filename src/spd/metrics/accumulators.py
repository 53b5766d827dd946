"""torchmetrics accumulators over the pure functions, so that states sum across DDP processes."""

from __future__ import annotations

import torch
from torchmetrics import Metric

from ..labels import KeypointSpace
from .parsing import ParsingScores, confusion_matrix, parsing_scores, per_image_iou_update, per_image_miou
from .pose import pckh_scores, pckh_update


class ConfusionMatrix(Metric):
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.add_state("conf", default=torch.zeros(num_classes, num_classes + 1, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        self.conf += confusion_matrix(pred, target, self.num_classes).to(self.conf.device)

    def compute(self) -> ParsingScores:
        return parsing_scores(self.conf.cpu())


class PerImageIoU(Metric):
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.add_state("iou_sum", default=torch.zeros(num_classes, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros(num_classes, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """One image at a time: [H, W] each."""
        iou, both = per_image_iou_update(pred, target, self.num_classes)
        self.iou_sum += iou.to(self.iou_sum.device)
        self.count += both.to(self.count.device)

    def compute(self) -> float:
        return per_image_miou(self.iou_sum.cpu(), self.count.cpu())


class PCKh(Metric):
    full_state_update = False

    def __init__(self, space: KeypointSpace, **kwargs):
        super().__init__(**kwargs)
        self.space = space
        self.add_state("correct", default=torch.zeros(space.num_joints, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("counted", default=torch.zeros(space.num_joints, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        correct, counted = pckh_update(pred.double(), target.double(), self.space)  # where the states are
        self.correct += correct.to(self.correct.device)
        self.counted += counted.to(self.counted.device)

    def compute(self) -> dict[str, float]:
        return pckh_scores(self.correct.cpu(), self.counted.cpu(), self.space)


class UVError(Metric):
    """Mean absolute U, V error on pixels where the predicted part equals the ground truth's (> 0)."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("total", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred_index: torch.Tensor, pred_uv: torch.Tensor, index: torch.Tensor, uv: torch.Tensor,
               valid: torch.Tensor) -> None:
        """pred_index, index [H, W]; pred_uv, uv [2, H, W] (pred_uv already of the predicted part)."""
        mask = (pred_index == index) & (index > 0) & (index < 255) & valid
        err = (pred_uv.double() - uv.double()).abs().mean(0)
        self.total += torch.where(mask, err, 0).sum().to(self.total.device)  # not err[mask]: a host sync on a GPU
        self.count += mask.sum().to(self.count.device)

    def compute(self) -> float:
        return float(self.total / self.count) if self.count > 0 else float("nan")
