"""Parsing metrics from one confusion matrix accumulated over the whole set (the official LIP
protocol).

The matrix is [K, K + 1]: rows are ground-truth classes, columns predicted classes, and the last
column counts predictions outside 0..K-1 (a class with no counterpart in a cross-dataset
mapping). Ground-truth pixels outside 0..K-1 (255 = ignore) are not counted.

A class absent from both ground truth and prediction has IoU nan and is left out of the means
(as the official script's nan-mean does); ``absent="zero"`` counts it as 0 instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """int64 [K, K + 1] from predicted and ground-truth class maps of any (equal) shape."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != ground truth shape {tuple(target.shape)}")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    valid = (target >= 0) & (target < num_classes)
    pred = torch.where((pred >= 0) & (pred < num_classes), pred, num_classes)
    # Ignored pixels count in one extra cell, dropped at the end: a masked index (target[valid]) and
    # CUDA's bincount (which reads its input's maximum back) would each stop the host on a GPU.
    cells = num_classes * (num_classes + 1)
    index = torch.where(valid, target * (num_classes + 1) + pred, cells)
    counts = torch.zeros(cells + 1, dtype=torch.int64, device=index.device).scatter_add_(0, index, torch.ones_like(index))
    return counts[:cells].reshape(num_classes, num_classes + 1)


@dataclass
class ParsingScores:
    pixel_accuracy: float
    mean_accuracy: float
    miou: float
    fwiou: float
    iou: list[float]        # per class, nan where absent from both ground truth and prediction
    accuracy: list[float]   # per class recall, nan where absent from the ground truth


def _nanmean(x: torch.Tensor) -> float:
    x = x[~torch.isnan(x)]
    return float(x.mean()) if x.numel() else float("nan")


def class_counts(conf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(true positives, ground-truth pixels, predicted pixels) per class of a [K, K + 1] matrix;
    the last column (foreign predictions) counts as ground truth missed, never as a prediction."""
    conf = conf.double()
    return conf.diagonal(), conf.sum(1), conf[:, : conf.shape[0]].sum(0)


def parsing_scores(conf: torch.Tensor, absent: str = "nan") -> ParsingScores:
    tp, gt, pred = class_counts(conf)
    union = gt + pred - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.nan)
    if absent == "zero":
        iou = torch.nan_to_num(iou, nan=0.0)
    elif absent != "nan":
        raise ValueError(f"absent must be 'nan' or 'zero', got {absent!r}")
    acc = torch.where(gt > 0, tp / gt.clamp_min(1), torch.nan)
    total = gt.sum()
    freq = gt / total.clamp_min(1)
    return ParsingScores(
        pixel_accuracy=float(tp.sum() / total) if total > 0 else float("nan"),
        mean_accuracy=_nanmean(acc),
        miou=_nanmean(iou),
        fwiou=float((freq * torch.nan_to_num(iou)).sum()),
        iou=iou.tolist(),
        accuracy=acc.tolist(),
    )


def per_image_iou_update(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For one image: per-class IoU sums and counts over the classes present in BOTH the
    prediction and the ground truth (the SPD prototype's non-standard "per-image" IoU)."""
    tp, gt, pr = class_counts(confusion_matrix(pred, target, num_classes))
    both = (gt > 0) & (pr > 0)
    iou = torch.where(both, tp / (gt + pr - tp).clamp_min(1), 0.0)
    return iou, both.double()


def per_image_miou(iou_sum: torch.Tensor, count: torch.Tensor) -> float:
    return _nanmean(torch.where(count > 0, iou_sum / count.clamp_min(1), torch.nan))
