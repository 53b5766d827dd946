"""DensePose: for each pixel, the body part (24 and background) and its U, V chart coordinates.

The head's raw output is 25 part logits followed by U and V of the 24 parts; :meth:`split` makes
``dp_index`` [B, 25, h, w] logits and ``dp_uv`` [B, 2, 24, h, w] in [0, 1] (a sigmoid, float32
whatever the autocast: U, V near 0 or 1 lose their precision in bf16). Loss: cross-entropy on the
part index (as parsing, ``loss.part_at`` / ``dense_at``, part class weights) and smooth-L1 on the
ground-truth part's U, V at foreground pixels whose U, V are valid (not mirrored, not padding),
the targets of both resized by ``loss.resize``. Decoded by argmax and U, V read at the predicted
part; scored by the part mIoU and the mean U, V error on pixels whose part is right; written as an
IUV PNG (I, 255 U, 255 V), the format of detectron2's DensePose tools.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.image_io import write_iuv
from ..labels import IGNORE_INDEX, label_space
from ..metrics import ConfusionMatrix, UVError
from .base import Column, Output, Task, TaskMetric, Writer, argmax_labels
from .grids import resize_nearest
from .parsing import _round, cell, dense_cross_entropy, label_targets

NUM_DP_PARTS = 24  # DensePose body parts; the part-index head has one more class, background


def uv_loss(pred_uv: torch.Tensor, index: torch.Tensor, uv: torch.Tensor, valid: torch.Tensor,
            beta: float = 1.0 / 9.0) -> torch.Tensor:
    """pred_uv [B, 2, 24, h, w]; index [B, h, w] (0 background, 255 ignore); uv [B, 2, h, w];
    valid [B, h, w] bool, all at the prediction's grid -> scalar: the mean smooth-L1 of the
    ground-truth part's U, V over the valid foreground pixels (0 when there are none)."""
    valid = valid & (index > 0) & (index != IGNORE_INDEX)
    part = (index.long().clamp(1, pred_uv.shape[2]) - 1)[:, None, None]  # [B, 1, 1, h, w]
    chosen = pred_uv.float().gather(2, part.expand(-1, 2, 1, -1, -1))[:, :, 0]  # [B, 2, h, w]
    loss = F.smooth_l1_loss(chosen, uv.float(), beta=beta, reduction="none").sum(1)
    return (loss * valid).sum() / valid.sum().clamp_min(1)


class DensePoseMetric(TaskMetric):
    def __init__(self, truth: str):
        self.parts, self.uv, self.truth = ConfusionMatrix(NUM_DP_PARTS + 1), UVError(), truth
        self.states = (self.parts, self.uv)

    def update(self, prediction, targets, here) -> None:
        if prediction.dp_index is None or not bool(targets["has_densepose"]):
            return
        pred_index, gt_index = here(prediction.dp_index).long(), here(targets["dp_index"]).long()
        self.parts.update(pred_index, gt_index)
        self.uv.update(pred_index, here(prediction.dp_uv), gt_index, here(targets["dp_uv"]), here(targets["dp_uv_valid"]))

    def count_tensors(self):
        return [self.parts.conf]

    def result(self):
        if not self.counted():
            return None
        return {"part_miou": _round(self.parts.compute().miou), "uv_error": round(self.uv.compute(), 4),
                "ground_truth": self.truth}


def _write_iuv(path, prediction, spec) -> None:
    write_iuv(path, prediction.dp_index, prediction.dp_uv)


class DensePose(Task):
    name = "densepose"
    outputs = (Output("dp_index", "mean", "[B, 25, h, w] DensePose part logits (0 = background)"),
               Output("dp_uv", "final", "[B, 48, h, w] DensePose U of parts 1..24, then V of parts 1..24, in [0, 1]"))
    terms = ("dp_index", "dp_uv")
    writers = {"iuv": Writer("_iuv.png", _write_iuv, label="DensePose (IUV PNG)")}
    columns = (Column("DP part mIoU", ("part_miou",)), Column("DP UV error", ("uv_error",), 3))

    def channels(self, model_config) -> int:
        return (NUM_DP_PARTS + 1) + 2 * NUM_DP_PARTS

    def split(self, raw):
        b, _, h, w = raw.shape
        # float32 whatever the autocast: U, V near 0 or 1 lose their precision in bf16
        uv = torch.sigmoid(raw[:, NUM_DP_PARTS + 1:].float()).reshape(b, 2, NUM_DP_PARTS, h, w)
        return {"dp_index": raw[:, : NUM_DP_PARTS + 1], "dp_uv": uv}

    def targets(self, batch, size, loss_config):
        has = batch["has_densepose"]
        valid = batch["dp_uv_valid"] & has[:, None, None]
        uv = batch["dp_uv"]
        if size is not None:
            valid, uv = resize_nearest(valid, size, loss_config.resize), resize_nearest(uv, size, loss_config.resize)
        return {"dp_index": label_targets(batch["dp_index"], has, size, loss_config.resize), "dp_uv": uv,
                "dp_uv_valid": valid}

    def loss(self, outputs, targets, loss_config, weights):
        at = loss_config.part_at or loss_config.dense_at
        index = dense_cross_entropy(outputs["dp_index"], lambda size: targets(size)["dp_index"], at,
                                    weights.get("part_weights"))
        t = targets(tuple(outputs["dp_uv"].shape[-2:]))
        return {"dp_index": index, "dp_uv": uv_loss(outputs["dp_uv"], t["dp_index"], t["dp_uv"], t["dp_uv_valid"])}

    def flip_permutation(self, output, model_config):
        # U, V have no mirror table: they are read from the un-mirrored view only.
        return label_space("densepose").flip_permutation if output == "dp_index" else None

    def kernel(self, output, protocol):
        # U, V are never resized with TF1's legacy resizes: they belong to JPPNet's evaluation,
        # which has no DensePose.
        legacy = output == "dp_uv" and protocol.interpolation == "tf_legacy"
        return "bilinear" if legacy else super().kernel(output, protocol)

    def decode(self, maps, protocol, return_probs):
        index = argmax_labels(maps["dp_index"])
        uv = maps["dp_uv"]
        part = index.long()
        if hasattr(uv, "select"):  # only the predicted part's U and V are resized
            out = uv.select(part.clamp_min(1) - 1, 2) * (part > 0)
        else:
            out = torch.empty(2, uv.height, uv.width, device=index.device)
            for a, b in uv.bands():
                rows = part[a:b]
                band = uv.rows(a, b).reshape(2, -1, b - a, uv.width)  # [2, 24, rows, W]
                picked = band.gather(1, (rows.clamp_min(1) - 1)[None, None].expand(2, 1, -1, -1))[:, 0]
                out[:, a:b] = picked * (rows > 0)
        return {"dp_index": index, "dp_uv": out}

    def metric(self, scoring):
        return DensePoseMetric(scoring.densepose_truth)

    def markdown(self, d):
        return ["", f"DensePose ({d['ground_truth']}): part mIoU {cell(d['part_miou'])}, mean |U,V| error "
                    f"{cell(d['uv_error'])} (on pixels whose part is right)"]

    def logged(self, result):
        return {"val/dp_part_miou": result["part_miou"] or 0.0}


DENSEPOSE = DensePose()
