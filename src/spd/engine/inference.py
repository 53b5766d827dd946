"""Test-time prediction at the original image resolution (the protocol of evaluation.md).

Each image is resized to ``input_size`` x scale for every scale, and mirrored when ``flip``; the
mirror's outputs have their left/right channels swapped (label-space tables) and are flipped back.
Parsing and part-index logits of the chosen stages are resized bilinearly to the ORIGINAL size and
averaged, then argmax. Pose uses the final stage's heatmaps, averaged the same way at the original
size, decoded per joint. U, V come from the un-mirrored views only (their mirror table is not
available offline), taken at the predicted part.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..config.schema import EvalConfig
from ..data.heatmaps import HeatmapCodec
from ..labels import keypoint_space, label_space
from ..model.spd_net import SPDNet


@dataclass
class Prediction:
    """parsing [H, W] int64; keypoints [K, 2] (x, y) and keypoint_scores [K]; dp_index [H, W] int64;
    dp_uv [2, H, W] (U, V of the predicted part). None for tasks the model lacks."""

    parsing: torch.Tensor | None = None
    keypoints: torch.Tensor | None = None
    keypoint_scores: torch.Tensor | None = None
    dp_index: torch.Tensor | None = None
    dp_uv: torch.Tensor | None = None


def protocol_dict(protocol: EvalConfig) -> dict:
    return {**asdict(protocol), "resolution": "original (logits resized bilinearly, align_corners=False, then argmax)",
            "metric": "one confusion matrix over the whole set; classes absent from both sides are skipped (nan-mean)"}


def _unflip(x: torch.Tensor, perm: tuple[int, ...], dim: int = 1) -> torch.Tensor:
    return x.flip(-1).index_select(dim, torch.tensor(perm, device=x.device))


@torch.no_grad()
def predict_image(model: SPDNet, image: torch.Tensor, protocol: EvalConfig) -> Prediction:
    """image: uint8 RGB [3, H, W] on the model's device."""
    config = model.config
    height, width = image.shape[-2:]
    x = model.normalise(image[None])
    perms = {"parsing": label_space(config.parsing_space).flip_permutation,
             "pose": keypoint_space().flip_permutation, "dp_index": label_space("densepose").flip_permutation}
    sums: dict[str, torch.Tensor] = {}
    views = 0
    uv_sum, uv_views = None, 0
    for scale in protocol.scales:
        size = (max(8, round(protocol.input_size[0] * scale)), max(8, round(protocol.input_size[1] * scale)))
        xs = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        batch = torch.cat([xs, xs.flip(-1)]) if protocol.flip else xs
        stages = model.predict_stages(batch)
        chosen = stages if protocol.stages == "all" else stages[-1:]
        for key in ("parsing", "dp_index", "pose"):
            if getattr(stages[-1], key) is None:
                continue
            maps = [getattr(s, key) for s in (stages[-1:] if key == "pose" else chosen)]
            mean = torch.stack(maps).float().mean(0)
            mean = F.interpolate(mean, size=(height, width), mode="bilinear", align_corners=False)
            total = mean[:1] + (_unflip(mean[1:], perms[key]) if protocol.flip else 0)
            sums[key] = sums[key] + total if key in sums else total
        views += 2 if protocol.flip else 1
        if stages[-1].dp_uv is not None:
            uv = stages[-1].dp_uv[:1].float()  # [1, 2, 24, h, w], un-mirrored view
            uv = F.interpolate(uv.flatten(1, 2), size=(height, width), mode="bilinear", align_corners=False)
            uv_sum = uv if uv_sum is None else uv_sum + uv
            uv_views += 1
    out = Prediction()
    if "parsing" in sums:
        out.parsing = sums["parsing"][0].argmax(0)
    if "pose" in sums:
        keypoints, scores = HeatmapCodec(stride=1).decode(sums["pose"][0] / views)
        out.keypoints, out.keypoint_scores = keypoints, scores
    if "dp_index" in sums:
        out.dp_index = sums["dp_index"][0].argmax(0)
        uv = (uv_sum / uv_views).reshape(2, -1, height, width)
        part = (out.dp_index.clamp_min(1) - 1)[None, None].expand(2, 1, -1, -1)
        out.dp_uv = uv.gather(1, part)[:, 0] * (out.dp_index > 0)
    return out
