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

from ..config.schema import EvalConfig
from ..data.heatmaps import parabola_offset
from .fusion import Views
from .resized import ResizedSum
from .result import Prediction


def _argmax_map(maps: ResizedSum) -> torch.Tensor:
    """uint8 [H, W] class of the largest value."""
    out = torch.empty(maps.height, maps.width, dtype=torch.uint8, device=maps.maps[0].device)
    for a, b in maps.bands():
        out[a:b] = maps.rows(a, b).argmax(0).to(torch.uint8)
    return out


def _probabilities(maps: ResizedSum) -> torch.Tensor:
    return torch.cat([maps.rows(a, b).softmax(0) for a, b in maps.bands()], dim=1)


def _peaks(heatmaps: ResizedSum, decoder: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(keypoints [K, 2] (x, y), scores [K]) of the resized heatmaps, without holding them whole."""
    k, width, device = heatmaps.channels, heatmaps.width, heatmaps.maps[0].device
    best = torch.full((k,), -torch.inf, device=device)
    index = torch.zeros(k, dtype=torch.long, device=device)
    for a, b in heatmaps.bands():
        band = heatmaps.rows(a, b).flatten(1)
        where = band.argmax(1)  # the first maximum in raster order, as numpy's argmax in JPPNet's evaluation
        value = band.gather(1, where[:, None])[:, 0]
        better = value > best  # strict: the first maximum in raster order wins, as a full argmax
        best, index = torch.where(better, value, best), torch.where(better, where + a * width, index)
    iy, ix = index // width, index % width
    xy = torch.stack([ix, iy], -1).float()
    if decoder == "subpixel":
        joints = torch.arange(k, device=device)

        def value(rows, cols):
            return heatmaps.at(rows.clamp(0, heatmaps.height - 1), cols.clamp(0, width - 1))[joints, joints]

        for axis, (dy, dx), centre, size in ((0, (0, 1), ix, width), (1, (1, 0), iy, heatmaps.height)):
            lo, hi = value(iy - dy, ix - dx), value(iy + dy, ix + dx)
            xy[:, axis] += parabola_offset(lo, best, hi, (centre > 0) & (centre < size - 1))
    return xy, best


def _kernel(task: str, tta: EvalConfig) -> str:
    if task == "pose" and tta.pose_decoder == "jppnet":
        return "tf_nearest"
    return "tf_bilinear" if tta.interpolation == "tf_legacy" else "bilinear"


def _fused(v: Views, task: str, kernel: str, factor: float) -> ResizedSum:
    """The views' maps of ``task`` at the original size; mirror views kept apart (see
    :func:`~spd.predict.fusion.kept_apart`) are resized as mirrors."""
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
        out.keypoints, out.keypoint_scores = _peaks(fused["pose"], tta.pose_decoder)
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
