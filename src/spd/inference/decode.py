"""Fused network outputs -> predictions at the original image size, band by band.

Parsing and part index: the mean of the views' logits resized bilinearly to the original size,
then argmax (the evaluation protocol). Pose: the mean heatmap at the original size, its argmax per
joint, refined to sub-pixel by a parabola through the neighbours (``subpixel``) or not
(``argmax``); ``jppnet`` resizes the heatmaps as JPPNet's evaluation does (TF1's nearest
neighbour, the mirror view resized before it is flipped back) and takes the integer argmax. With
``interpolation: tf_legacy`` the other maps are resized with TF1's legacy bilinear, mirrors apart
likewise. U, V: resized bilinearly, read at the predicted part.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from ..data.heatmaps import HeatmapCodec
from .resized import ResizedSum
from .result import Prediction
from .settings import EvalConfig
from .views import Views


def _argmax_map(maps: ResizedSum) -> torch.Tensor:
    """uint8 [H, W] class of the largest value."""
    out = torch.empty(maps.height, maps.width, dtype=torch.uint8, device=maps.maps[0].device)
    for a, b in maps.bands():
        out[a:b] = maps.rows(a, b).argmax(0).to(torch.uint8)
    return out


def _probabilities(maps: ResizedSum) -> torch.Tensor:
    return torch.cat([maps.rows(a, b).softmax(0) for a, b in maps.bands()], dim=1)


def _kernel(task: str, tta: EvalConfig) -> str:
    if task == "pose" and tta.pose_decoder == "jppnet":
        return "tf_nearest"
    return "tf_bilinear" if tta.interpolation == "tf_legacy" else "bilinear"


def _fused(v: Views, task: str, kernel: str, factor: float) -> ResizedSum:
    """The views' maps of ``task`` at the original size; mirror views kept apart (see
    :func:`~spd.inference.views.kept_apart`) are resized as mirrors."""
    if task not in v.mirrored:
        return ResizedSum(v.maps[task], v.placements, factor, kernel)
    n = len(v.placements)
    return ResizedSum(v.maps[task] + v.mirrored[task], v.placements * 2, factor, kernel, [False] * n + [True] * n)


def decode_views(v: Views, tta: EvalConfig, classes: tuple[str, ...], joints: tuple[str, ...],
                 return_probs: bool = False) -> Prediction:
    out = Prediction(classes=classes, joints=joints, settings=asdict(tta))
    factor = 1.0 / (v.views * len(v.placements))
    fused = {task: _fused(v, task, _kernel(task, tta), factor) for task in v.maps}
    if "parsing" in fused:
        out.parsing = _argmax_map(fused["parsing"])
        if return_probs:
            out.parsing_probs = _probabilities(fused["parsing"])
    if "pose" in fused:
        # Heatmaps already at the photo's size: the codec's decoding at stride 1.
        out.keypoints, peaks = HeatmapCodec(stride=1).decode(fused["pose"], refine=tta.pose_decoder == "subpixel")
        # Scores in [0, 1] as COCO-style consumers expect: the heatmap's peak (its target is 1 on the
        # joint, 0 away from it) clamped, since raw outputs overshoot both ways (-1.4 to 1.9 seen).
        out.keypoint_scores = peaks.clamp(0.0, 1.0)
    if "dp_index" in fused:
        out.dp_index = _argmax_map(fused["dp_index"])
        uv = ResizedSum(v.uv, v.placements, 1.0 / len(v.uv))
        out.dp_uv = torch.empty(2, uv.height, uv.width, device=out.dp_index.device)
        for a, b in uv.bands():
            index = out.dp_index[a:b].long()
            band = uv.rows(a, b).reshape(2, -1, b - a, uv.width)  # [2, 24, rows, W]
            picked = band.gather(1, (index.clamp_min(1) - 1)[None, None].expand(2, 1, -1, -1))[:, 0]
            out.dp_uv[:, a:b] = picked * (index > 0)
    return out
