"""Parsing loss: pixel cross-entropy ignoring 255, samples without a parsing target excluded. Either
the labels are nearest-resized to the logits' grid (JPPNet), or the logits are upsampled
bilinearly to the labels' size (CE2P, DeepLab v3+): denser supervision of thin parts, which
matters at output stride 16 on small images."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..labels import IGNORE_INDEX
from ..ops.validation import require_choice
from .targets import resize_nearest

DENSE_AT = ("output", "input")


def at_resolution(prediction: torch.Tensor, label_size: tuple[int, int], at: str) -> torch.Tensor:
    """[B, C, h, w] -> itself at "output", upsampled bilinearly to ``label_size`` (float32) at "input"."""
    require_choice("dense loss resolution", at, DENSE_AT)
    if at == "input":
        return F.interpolate(prediction.float(), size=label_size, mode="bilinear", align_corners=False)
    return prediction


def parsing_loss(logits: torch.Tensor, target: torch.Tensor, has_target: torch.Tensor,
                 at: str = "output", resize: str = "centred",
                 class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """logits [B, C, h, w]; target [B, H, W] integer class ids (255 ignore); has_target [B] bool -> scalar,
    the mean over the labelled pixels of the batch (0 when there are none). ``at``: "output"
    (labels to the logits' grid, nearest as ``resize`` says) or "input" (logits to the labels' size).
    ``class_weights`` [C] scale each pixel's term by its class; the sum is still divided by the
    number of labelled pixels, so weights whose pixel-weighted mean is 1 keep the loss's scale."""
    logits = at_resolution(logits, target.shape[-2:], at)
    target = resize_nearest(target, logits.shape[-2:], resize).long()  # labels travel as uint8
    target = torch.where(has_target[:, None, None], target, IGNORE_INDEX)
    weight = class_weights.float() if class_weights is not None else None  # the logits are cast to float32 too
    total = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (target != IGNORE_INDEX).sum().clamp_min(1)
