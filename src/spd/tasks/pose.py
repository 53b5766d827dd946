"""Pose: the 16 LIP joints as heatmaps.

Output ``pose`` [B, 16, h, w] heatmaps (the final stage's at test time). Loss: JPPNet's per-image
L2 norm; missing joints (weight 0) and samples without pose contribute nothing; the target
heatmaps, made at the full-scale grid, are resized to each smaller grid by ``loss.resize``.
Decoded by the heatmap codec at the photo's size (argmax, refined to sub-pixel by a parabola, or
JPPNet's TF1-nearest resize and integer argmax); scored by PCKh@0.5; written as a COCO-style
keypoints JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch

from ..data.heatmaps import HeatmapCodec
from ..labels import keypoint_space
from ..metrics import PCKh
from ..ops.arrays import as_numpy
from ..ops.atomic import write_text
from .base import Column, Output, Task, TaskMetric, Writer
from .grids import resize_heatmaps
from .parsing import cell


def pose_loss(pred: torch.Tensor, target: torch.Tensor, joint_weight: torch.Tensor) -> torch.Tensor:
    """pred, target [B, K, h, w]; joint_weight [B, K] in {0, 1} -> scalar: the mean over samples with
    any joint of sqrt(sum_k,y,x w_k (t - p)^2) (JPPNet)."""
    sq = (pred.float() - target.float()) ** 2 * joint_weight[:, :, None, None]
    per_image = sq.flatten(1).sum(1)
    has = joint_weight.sum(1) > 0
    # sqrt has no derivative at 0: images without joints are left out before taking it.
    norms = torch.sqrt(torch.where(has, per_image, 1.0))
    return (norms * has).sum() / has.sum().clamp_min(1)


def _number(value, digits: int) -> float | None:
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def keypoints_record(prediction) -> dict[str, Any]:
    """COCO results style: ``keypoints`` = [x1, y1, s1, x2, ...] in original-image pixels."""
    xy, scores = as_numpy(prediction.keypoints), as_numpy(prediction.keypoint_scores)
    triplets = np.concatenate([xy, scores[:, None]], axis=1)
    # JSON has no NaN or infinity: a value that is not a number is written as null.
    return {"joints": list(prediction.joints), "keypoints": [_number(v, 2) for v in triplets.reshape(-1)],
            "score": _number(scores.mean(), 4)}


def keypoints_document(prediction) -> dict[str, Any]:
    """The keypoints JSON of one image: its name and size, the joints, the test-time protocol used."""
    height, width = prediction.size
    return {"image": prediction.source, "width": width, "height": height, **keypoints_record(prediction),
            "protocol": prediction.protocol}


def _write_keypoints(path, prediction, spec) -> None:
    write_text(path, json.dumps(keypoints_document(prediction), indent=1, allow_nan=False) + "\n")


class PoseMetric(TaskMetric):
    def __init__(self):
        self.pckh = PCKh(keypoint_space())
        self.states = (self.pckh,)

    def update(self, prediction, targets, here) -> None:
        if prediction.keypoints is not None and bool(targets["has_pose"]):
            self.pckh.update(here(prediction.keypoints)[None], here(targets["keypoints"])[None])

    def count_tensors(self):
        return [self.pckh.counted]

    def result(self):
        if not self.counted():
            return None
        return {"pckh": {k: None if math.isnan(v) else round(v, 2) for k, v in self.pckh.compute().items()}}


class Pose(Task):
    name = "pose"
    outputs = (Output("pose", "final", "[B, 16, h, w] keypoint heatmaps (LIP joint order)"),)
    terms = ("pose",)
    pyramid_resize = "nearest"
    writers = {"keypoints": Writer("_keypoints.json", _write_keypoints, label="keypoints (JSON)")}
    columns = (Column("PCKh", ("pckh", "Total")),)

    def channels(self, model_config) -> int:
        return keypoint_space().num_joints

    def targets(self, batch, size, loss_config):
        # Heatmaps are made at the full-scale grid; smaller input scales give smaller grids.
        heatmaps = batch["heatmaps"] if size is None else resize_heatmaps(batch["heatmaps"], size, loss_config.resize)
        return {"heatmaps": heatmaps, "joint_weight": batch["joint_weight"] * batch["has_pose"][:, None]}

    def loss(self, outputs, targets, loss_config, weights):
        pred = outputs["pose"]
        t = targets(tuple(pred.shape[-2:]))
        return {"pose": pose_loss(pred, t["heatmaps"], t["joint_weight"])}

    def flip_permutation(self, output, model_config):
        return keypoint_space().flip_permutation

    def kernel(self, output, protocol):
        return "tf_nearest" if protocol.pose_decoder == "jppnet" else super().kernel(output, protocol)

    def kept_apart(self, output, protocol):
        return super().kept_apart(output, protocol) or (protocol.flip and protocol.pose_decoder == "jppnet")

    def decode(self, maps, protocol, return_probs):
        # Heatmaps already at the photo's size: the codec's decoding at stride 1.
        keypoints, peaks = HeatmapCodec(stride=1).decode(maps["pose"], refine=protocol.pose_decoder == "subpixel")
        # Scores in [0, 1] as COCO-style consumers expect: the heatmap's peak (its target is 1 on the
        # joint, 0 away from it) clamped, since raw outputs overshoot both ways (-1.4 to 1.9 seen).
        return {"keypoints": keypoints, "keypoint_scores": peaks.clamp(0.0, 1.0)}

    def metric(self, scoring):
        return PoseMetric() if scoring.has_pose else None

    def markdown(self, result):
        names = list(result["pckh"])
        return ["", "PCKh@0.5", "", "| " + " | ".join(names) + " |", "|" + "---:|" * len(names),
                "| " + " | ".join(str(cell(result["pckh"][n])) for n in names) + " |"]

    def logged(self, result):
        return {"val/pckh": result["pckh"]["Total"] or 0.0}


POSE = Pose()
