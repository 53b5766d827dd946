"""Metrics: the official LIP parsing protocol, PCKh@0.5, DensePose part IoU and U, V error."""

from .accumulators import PCKh, ConfusionMatrix, PerImageIoU, UVError
from .parsing import ParsingScores, confusion_matrix, parsing_scores, per_image_iou_update, per_image_miou
from .pose import pckh_scores, pckh_update

__all__ = ["ConfusionMatrix", "PCKh", "ParsingScores", "PerImageIoU", "UVError", "confusion_matrix", "parsing_scores",
           "pckh_scores", "pckh_update", "per_image_iou_update", "per_image_miou"]
