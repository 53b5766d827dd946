"""Box arithmetic of detectron2's Faster R-CNN as pure functions on [N, 4] XYXY float tensors:
anchors, delta decoding, clipping, the RPN's proposal selection, the box head's inference and the
pooler's level assignment. Each follows detectron2's operation order, so that the same weights
give the same boxes."""

from __future__ import annotations

import math

import torch
from torchvision.ops import batched_nms, roi_align

ANCHOR_SIZES = (32, 64, 128, 256, 512)   # one per level, p2..p6
ASPECT_RATIOS = (0.5, 1.0, 2.0)
STRIDES = (4, 8, 16, 32, 64)
SCALE_CLAMP = math.log(1000.0 / 16)
RPN_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def cell_anchors(size: int, ratios=ASPECT_RATIOS) -> torch.Tensor:
    """[len(ratios), 4]: boxes of area size² and height / width = ratio, centred at 0."""
    anchors = []
    for ratio in ratios:
        w = math.sqrt(size ** 2.0 / ratio)
        h = ratio * w
        anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(anchors)


def grid_anchors(grid: tuple[int, int], stride: int, size: int, device=None) -> torch.Tensor:
    """[H * W * A, 4]: the cell anchors at every location of an H x W grid (offset 0)."""
    shifts_x = torch.arange(0.0, grid[1] * stride, step=stride, dtype=torch.float32, device=device)
    shifts_y = torch.arange(0.0, grid[0] * stride, step=stride, dtype=torch.float32, device=device)
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
    return (shifts.view(-1, 1, 4) + cell_anchors(size).to(device).view(1, -1, 4)).reshape(-1, 4)


def apply_deltas(deltas: torch.Tensor, boxes: torch.Tensor, weights=RPN_WEIGHTS) -> torch.Tensor:
    """deltas [R, 4k] relative to boxes [R, 4] -> boxes [R, 4k]."""
    deltas = deltas.float()
    boxes = boxes.to(deltas.dtype)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx, dy = deltas[:, 0::4] / wx, deltas[:, 1::4] / wy
    dw = torch.clamp(deltas[:, 2::4] / ww, max=SCALE_CLAMP)
    dh = torch.clamp(deltas[:, 3::4] / wh, max=SCALE_CLAMP)
    pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
    pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
    pred_w = torch.exp(dw) * widths[:, None]
    pred_h = torch.exp(dh) * heights[:, None]
    x1, y1 = pred_ctr_x - 0.5 * pred_w, pred_ctr_y - 0.5 * pred_h
    x2, y2 = pred_ctr_x + 0.5 * pred_w, pred_ctr_y + 0.5 * pred_h
    return torch.stack((x1, y1, x2, y2), dim=-1).reshape(deltas.shape)


def clip(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Boxes clipped to an image of size (h, w) (coordinates in [0, w] and [0, h])."""
    h, w = size
    return torch.stack((boxes[:, 0].clamp(min=0, max=w), boxes[:, 1].clamp(min=0, max=h),
                        boxes[:, 2].clamp(min=0, max=w), boxes[:, 3].clamp(min=0, max=h)), dim=-1)


def nonempty(boxes: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    return ((boxes[:, 2] - boxes[:, 0]) > threshold) & ((boxes[:, 3] - boxes[:, 1]) > threshold)


def top_proposals(proposals: list[torch.Tensor], logits: list[torch.Tensor], size: tuple[int, int],
                  pre_nms_topk: int = 1000, post_nms_topk: int = 1000, nms_thresh: float = 0.7) -> torch.Tensor:
    """One image's proposals: per level its ``pre_nms_topk`` best, clipped, empty ones dropped, NMS
    per level, the ``post_nms_topk`` best over all levels. ``proposals[l]`` [R_l, 4], ``logits[l]``
    [R_l]. Returns [P, 4] in decreasing objectness."""
    boxes, scores, levels = [], [], []
    for level, (p, s) in enumerate(zip(proposals, logits)):
        k = min(s.shape[0], pre_nms_topk)
        top, index = s.topk(k)
        boxes.append(p[index])
        scores.append(top)
        levels.append(torch.full((k,), level, dtype=torch.int64, device=s.device))
    boxes, scores, levels = torch.cat(boxes), torch.cat(scores), torch.cat(levels)
    valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores)
    if not valid.all():
        boxes, scores, levels = boxes[valid], scores[valid], levels[valid]
    boxes = clip(boxes, size)
    keep = nonempty(boxes)
    if keep.sum().item() != len(boxes):
        boxes, scores, levels = boxes[keep], scores[keep], levels[keep]
    keep = batched_nms(boxes, scores, levels, nms_thresh)[:post_nms_topk]
    return boxes[keep]


def detections(class_logits: torch.Tensor, deltas: torch.Tensor, proposals: torch.Tensor, size: tuple[int, int],
               score_thresh: float = 0.05, nms_thresh: float = 0.5, topk: int = 100
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The box head's inference for one image and one class (person): (boxes [D, 4], scores [D])
    in decreasing score."""
    boxes = apply_deltas(deltas, proposals, BOX_WEIGHTS)
    scores = torch.softmax(class_logits, dim=-1)
    valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
    if not valid.all():
        boxes, scores = boxes[valid], scores[valid]
    scores = scores[:, :-1]
    classes = boxes.shape[1] // 4
    boxes = clip(boxes.reshape(-1, 4), size).view(-1, classes, 4)
    mask = scores > score_thresh
    index = mask.nonzero()
    boxes = boxes[index[:, 0], 0] if classes == 1 else boxes[mask]
    scores = scores[mask]
    keep = batched_nms(boxes, scores, index[:, 1], nms_thresh)[:topk]
    return boxes[keep], scores[keep]


def pool(levels: list[torch.Tensor], boxes: torch.Tensor, resolution: int, sampling_ratio: int = 2,
         first_level: int = 2) -> torch.Tensor:
    """ROIAlign (unaligned, as detectron2's ``ROIAlign`` pooler) of one image's boxes [K, 4], each
    on the level its size assigns (canonical 224 px at level 4), or on the one level given.
    Returns [K, C, resolution, resolution]."""
    rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], dim=1)
    if len(levels) == 1:
        return roi_align(levels[0], rois, resolution, 1.0 / 2 ** first_level, sampling_ratio, aligned=False)
    sizes = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    assigned = torch.floor(4 + torch.log2(sizes / 224 + 1e-8)).clamp(first_level, first_level + len(levels) - 1)
    assigned = assigned.to(torch.int64) - first_level
    out = levels[0].new_zeros(len(boxes), levels[0].shape[1], resolution, resolution)
    for level, x in enumerate(levels):
        index = torch.nonzero(assigned == level).squeeze(1)
        out.index_put_((index,), roi_align(x, rois[index], resolution, 1.0 / 2 ** (first_level + level),
                                           sampling_ratio, aligned=False))
    return out
