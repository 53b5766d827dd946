"""Human parsing: one class per pixel in the model's label space (LIP's 20 or ATR's 18).

Output ``parsing`` [B, C, h, w] logits. Loss: pixel cross-entropy ignoring 255, samples without a
parsing label left out; either the labels are nearest-resized to the logits' grid (JPPNet), or the
logits are upsampled bilinearly to the labels (``loss.dense_at: input``, as CE2P and DeepLab v3+:
denser supervision of thin parts). Decoded by argmax at the photo's size; scored by the whole-set
confusion matrix (pixel accuracy, mean accuracy, mIoU, frequency-weighted IoU, per class).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..data.image_io import write_label
from ..labels import IGNORE_INDEX, label_space
from ..metrics import ConfusionMatrix, PerImageIoU
from ..ops.errors import InputError
from ..ops.validation import require_choice
from .base import Column, Output, Scoring, Task, TaskMetric, Writer, argmax_labels, probabilities
from .grids import resize_nearest

DENSE_AT = ("output", "input")


def at_resolution(prediction: torch.Tensor, label_size: tuple[int, int], at: str) -> torch.Tensor:
    """[B, C, h, w] -> itself at "output", upsampled bilinearly to ``label_size`` (float32) at "input"."""
    require_choice("dense loss resolution", at, DENSE_AT)
    if at == "input":
        return F.interpolate(prediction.float(), size=label_size, mode="bilinear", align_corners=False)
    return prediction


def label_targets(labels: torch.Tensor, has_target: torch.Tensor, size: tuple[int, int] | None,
                  resize: str = "centred") -> torch.Tensor:
    """Class-id labels [B, H, W] (uint8 or integer; 255 ignore) -> int64 [B, *size] (the labels'
    own size for None), 255 wherever the sample has no target (``has_target`` [B] bool)."""
    target = labels if size is None else resize_nearest(labels, size, resize)
    return torch.where(has_target[:, None, None], target.long(), IGNORE_INDEX)


def pixel_cross_entropy(logits: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """logits [B, C, h, w]; target int64 [B, h, w] (255 ignore) -> scalar: the cross-entropy summed
    over the labelled pixels and divided by their number (0 when there are none). ``class_weights``
    [C] scale each pixel's term by its class; weights whose pixel-weighted mean is 1 keep the scale."""
    weight = class_weights.float() if class_weights is not None else None  # the logits are cast to float32 too
    total = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (target != IGNORE_INDEX).sum().clamp_min(1)


def dense_cross_entropy(logits: torch.Tensor, targets, at: str, class_weights: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """The cross-entropy of logits [B, C, h, w] at ``at`` ("output": labels at the logits' grid;
    "input": logits upsampled to the labels'), ``targets(size)`` giving the labels at a grid."""
    require_choice("dense loss resolution", at, DENSE_AT)
    if at == "input":
        target = targets(None)
        return pixel_cross_entropy(at_resolution(logits, target.shape[-2:], at), target, class_weights)
    return pixel_cross_entropy(logits, targets(tuple(logits.shape[-2:])), class_weights)


def parsing_loss(logits: torch.Tensor, target: torch.Tensor, has_target: torch.Tensor, at: str = "output",
                 resize: str = "centred", class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """logits [B, C, h, w]; target [B, H, W] class ids (255 ignore); has_target [B] bool -> scalar:
    the parsing term on its own (the loss prepares its targets once per grid instead)."""
    return dense_cross_entropy(logits, lambda size: label_targets(target, has_target, size, resize), at, class_weights)


def _round(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(100.0 * x, 2)


def cell(x) -> str:
    """A table cell: "–" for a metric that is undefined here (a class absent from both sides)."""
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else str(x)


class ParsingMetric(TaskMetric):
    """The whole set's confusion matrix (and the non-standard per-image mIoU), across label spaces
    through the mapping: a predicted class with no counterpart counts as wrong, a ground-truth
    class with none is ignored."""

    def __init__(self, scoring: Scoring):
        mapping = scoring.mapping
        if mapping is None and scoring.model_space != scoring.data_space:
            raise InputError(f"a {scoring.model_space} model on {scoring.data_space} data needs a label mapping "
                             "(--map shared|super|parts)")
        if mapping is not None:
            spaces = {space for group in mapping.groups for space in group.members}
            lacking = [s for s in (scoring.model_space, scoring.data_space) if s not in spaces]
            if lacking:
                raise InputError(f"label mapping {mapping.name!r} has no {lacking[0]} classes (it maps "
                                 f"{', '.join(sorted(spaces))}); a {lacking[0]} model or data needs a mapping that "
                                 "does" + (" (--map parts)" if lacking[0] == "pascal" else ""))
        self.mapping = mapping
        self.classes = mapping.classes if mapping else label_space(scoring.data_space).classes
        self.pred_lut = torch.from_numpy(mapping.lut(scoring.model_space)).long() if mapping else None
        self.gt_lut = torch.from_numpy(mapping.lut(scoring.data_space)).long() if mapping else None
        k = len(self.classes)
        self.confusion, self.per_image = ConfusionMatrix(k), PerImageIoU(k)
        self.states = (self.confusion, self.per_image)

    def to(self, device) -> "ParsingMetric":
        if self.mapping:
            self.pred_lut, self.gt_lut = self.pred_lut.to(device), self.gt_lut.to(device)
        return self

    def update(self, prediction, targets, here) -> None:
        if prediction.parsing is None or not bool(targets["has_parsing"]):
            return
        pred, gt = here(prediction.parsing).long(), here(targets["parsing"]).long()
        if self.mapping:
            pred, gt = self.pred_lut[pred.clamp(0, 255)], self.gt_lut[gt.clamp(0, 255)]
        self.confusion.update(pred, gt)
        self.per_image.update(pred, gt)

    def count_tensors(self) -> list[torch.Tensor]:
        return [self.confusion.conf]

    def result(self) -> dict[str, Any] | None:
        if not self.counted():
            return None
        s = self.confusion.compute()
        return {"pixel_accuracy": _round(s.pixel_accuracy), "mean_accuracy": _round(s.mean_accuracy),
                "miou": _round(s.miou), "fwiou": _round(s.fwiou),
                "per_image_miou_nonstandard": _round(self.per_image.compute()),
                "iou": {c: _round(v) for c, v in zip(self.classes, s.iou)},
                "accuracy": {c: _round(v) for c, v in zip(self.classes, s.accuracy)},
                # rows: ground truth; columns: prediction, the last one for predictions in no class
                "confusion_matrix": self.confusion.conf.long().tolist()}


def _write_parsing(path, prediction, spec) -> None:
    write_label(path, prediction.parsing, label_space(spec.space).palette_array())


def _write_labels(path, prediction, spec) -> None:
    write_label(path, spec.relabel.apply(prediction.parsing.numpy()), spec.relabel.palette)


def class_mask(labels: torch.Tensor, classes: tuple[int, ...], dilate: int = 0) -> torch.Tensor:
    """Class ids [H, W] -> bool [H, W]: the pixels of ``classes``, grown by ``dilate`` pixels (a
    square of side 2 dilate + 1, as two 1-d max filters: linear in the radius)."""
    mask = torch.isin(labels, torch.tensor(classes, dtype=labels.dtype, device=labels.device))
    if dilate > 0 and mask.any():
        x = mask[None, None].float()
        k = 2 * dilate + 1
        x = F.max_pool2d(x, (1, k), stride=1, padding=(0, dilate))
        x = F.max_pool2d(x, (k, 1), stride=1, padding=(dilate, 0))
        mask = x[0, 0] > 0
    return mask


def _write_mask(path, prediction, spec) -> None:
    mask = class_mask(prediction.parsing, spec.mask.classes, spec.mask.dilate)
    write_label(path, mask.to(torch.uint8) * 255)


class Parsing(Task):
    name = "parsing"
    outputs = (Output("parsing", "mean", "[B, C, h, w] parsing logits (C classes of the label space)"),)
    terms = ("parsing",)
    jppnet_head = "fc1_human"
    writers = {"parsing": Writer("_parsing.png", _write_parsing, label="parsing (class ids)"),
               "labels": Writer("_labels.png", _write_labels, needs_relabel=True),
               "mask": Writer("_mask.png", _write_mask, needs_mask=True, label="mask (0 / 255)")}
    columns = (Column("pixel acc", ("pixel_accuracy",)), Column("mean acc", ("mean_accuracy",)),
               Column("mIoU", ("miou",)))

    def channels(self, model_config) -> int:
        return label_space(model_config.parsing_space).num_classes

    def targets(self, batch, size, loss_config):
        return {"parsing": label_targets(batch["parsing"], batch["has_parsing"], size, loss_config.resize)}

    def loss(self, outputs, targets, loss_config, weights):
        return {"parsing": dense_cross_entropy(outputs["parsing"], lambda size: targets(size)["parsing"],
                                               loss_config.dense_at, weights.get("class_weights"))}

    def flip_permutation(self, output, model_config):
        return label_space(model_config.parsing_space).flip_permutation

    def decode(self, maps, protocol, return_probs):
        out = {"parsing": argmax_labels(maps["parsing"])}
        if return_probs:
            out["parsing_probs"] = probabilities(maps["parsing"])
        return out

    def metric(self, scoring):
        return ParsingMetric(scoring)

    def markdown(self, p):
        lines = ["", "| pixel acc | mean acc | mIoU | fwIoU | per-image mIoU (non-standard) |", "|---:|---:|---:|---:|---:|",
                 f"| {cell(p['pixel_accuracy'])} | {cell(p['mean_accuracy'])} | {cell(p['miou'])} | {cell(p['fwiou'])} | "
                 f"{cell(p['per_image_miou_nonstandard'])} |", "", "| class | IoU | accuracy |", "|---|---:|---:|"]
        return lines + [f"| {c} | {cell(p['iou'][c])} | {cell(p['accuracy'][c])} |" for c in p["iou"]]

    def logged(self, result):
        return {"val/miou": result["miou"] or 0.0, "val/pixel_acc": result["pixel_accuracy"] or 0.0}


PARSING = Parsing()
