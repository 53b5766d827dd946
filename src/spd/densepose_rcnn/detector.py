"""DensePose R-CNN (detectron2's ``GeneralizedRCNN`` with ``DensePoseROIHeads``, chart-based
IUV models) and its inference as detectron2's ``DefaultPredictor`` runs it: the photo resized
so that its short side is 800 px and its long side at most 1333 (Pillow's bilinear, as
detectron2's ``ResizeTransform``), BGR minus the Caffe mean, padded to a multiple of 32; the RPN's
proposals, the box head's detections, boxes scaled back to the photo; per detection the DensePose
chart at the detection's size (:func:`chart_result`, detectron2's ``ToChartResultConverter``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..ops.argmax import channel_argmax
from . import boxes as B
from .network import FPN, BoxHead, BoxPredictor, ChartPredictor, Decoder, DensePoseHead, RPNHead

PIXEL_MEAN_BGR = (103.530, 116.280, 123.675)
MIN_SIZE, MAX_SIZE = 800, 1333
SIZE_DIVISIBILITY = 32


@dataclass(frozen=True)
class DetectorConfig:
    depth: int = 50                 # ResNet-50 or -101
    decoder: bool = True            # the DensePose decoder (DECODER_ON); legacy models have none
    score_thresh: float = 0.05      # ROI_HEADS.SCORE_THRESH_TEST (apply_net.py's default; it offers 0.8 for its figures)
    nms_thresh: float = 0.5         # ROI_HEADS.NMS_THRESH_TEST
    detections_per_image: int = 100


@dataclass
class ChartResult:
    """One detection's DensePose at its box's integer size: ``labels`` int64 [h, w] (0 background,
    parts 1..24) and ``uv`` float32 [2, h, w] (0 outside the parts)."""

    labels: torch.Tensor
    uv: torch.Tensor


@dataclass
class Detections:
    """One photo's detections, most confident first: ``boxes`` [D, 4] XYXY in the photo's pixels,
    ``scores`` [D], ``charts`` a :class:`ChartResult` for each of the first detections (all unless
    fewer were asked for); ``raw`` the chart predictor's maps [len(charts), C, 112, 112]
    (coarse_segm, fine_segm, u, v)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    charts: list[ChartResult] = field(default_factory=list)
    raw: dict[str, torch.Tensor] = field(default_factory=dict)


def resized_shape(height: int, width: int, short: int | None = None, longest: int | None = None) -> tuple[int, int]:
    """detectron2's ``ResizeShortestEdge.get_output_shape`` (default sizes: its test-time
    INPUT.MIN_SIZE_TEST and MAX_SIZE_TEST, :data:`MIN_SIZE` and :data:`MAX_SIZE`)."""
    short, longest = short or MIN_SIZE, longest or MAX_SIZE
    size = short * 1.0
    scale = size / min(height, width)
    newh, neww = (size, scale * width) if height < width else (scale * height, size)
    if max(newh, neww) > longest:
        scale = longest * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    # At least one pixel: an image thousands of times wider than high would otherwise vanish.
    return max(1, int(newh + 0.5)), max(1, int(neww + 0.5))


def input_shape(height: int, width: int) -> tuple[int, int]:
    """The network's input size for a photo of ``height`` x ``width``: resized, then padded to a
    multiple of 32. Photos of one input shape batch exactly as each alone."""
    newh, neww = resized_shape(height, width)
    return newh + (-newh) % SIZE_DIVISIBILITY, neww + (-neww) % SIZE_DIVISIBILITY


def preprocess(image: torch.Tensor, device: torch.device | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
    """uint8 RGB [3, H, W] (any device) -> the network's input [1, 3, H', W'] on ``device`` (the
    image's by default; BGR minus the mean, padded to a multiple of 32) and the resized size
    (h, w) before padding. The resize is Pillow's, on the CPU."""
    h, w = image.shape[-2:]
    newh, neww = resized_shape(h, w)
    array = image.permute(1, 2, 0).cpu().numpy()
    if (newh, neww) != (h, w):
        array = np.asarray(Image.fromarray(array).resize((neww, newh), Image.BILINEAR))
    x = torch.from_numpy(array[:, :, ::-1].astype("float32").transpose(2, 0, 1).copy()).to(device or image.device)
    x = x - torch.tensor(PIXEL_MEAN_BGR, device=x.device).view(3, 1, 1)
    padded = input_shape(h, w)
    return F.pad(x, (0, padded[1] - neww, 0, padded[0] - newh))[None], (newh, neww)


def chart_result(raw: dict[str, torch.Tensor], i: int, box_xyxy: torch.Tensor) -> ChartResult:
    """Detection ``i``'s chart at its box's integer size: fine segmentation argmax where the coarse
    one says foreground, U and V of the chosen part (bilinear, ``align_corners=False``)."""
    # The box's width and height truncated, as detectron2's XYXY -> XYWH conversion and make_int_box.
    w = max(int((box_xyxy[2] - box_xyxy[0]).long()), 1)
    h = max(int((box_xyxy[3] - box_xyxy[1]).long()), 1)

    def resized(name: str) -> torch.Tensor:
        return F.interpolate(raw[name][i:i + 1], (h, w), mode="bilinear", align_corners=False)

    coarse = channel_argmax(resized("coarse_segm"), 1)
    labels = (channel_argmax(resized("fine_segm"), 1) * (coarse > 0).long())[0]
    u, v = resized("u"), resized("v")
    uv = torch.zeros([2, h, w], dtype=torch.float32, device=labels.device)
    for part in range(1, u.size(1)):
        at = labels == part
        uv[0][at] = u[0, part][at]
        uv[1][at] = v[0, part][at]
    return ChartResult(labels, uv)


class _Holder(nn.Module):
    """A named level of detectron2's module tree (``proposal_generator``, ``roi_heads``)."""


class DensePoseRCNN(nn.Module):
    """``detect(image uint8 RGB [3, H, W]) -> Detections``; module names are detectron2's."""

    def __init__(self, config: DetectorConfig = DetectorConfig()):
        super().__init__()
        self.config = config
        self.backbone = FPN(config.depth)
        self.proposal_generator = _Holder()
        self.proposal_generator.rpn_head = RPNHead()
        self.roi_heads = _Holder()
        self.roi_heads.box_head = BoxHead()
        self.roi_heads.box_predictor = BoxPredictor()
        if config.decoder:
            self.roi_heads.decoder = Decoder()
        self.roi_heads.densepose_head = DensePoseHead()
        self.roi_heads.densepose_predictor = ChartPredictor()

    @torch.no_grad()
    def detect(self, image: torch.Tensor, keep_raw: bool = False, charts: int | None = None) -> Detections:
        """``charts``: DensePose for the first (most confident) ``charts`` detections only (the
        head costs about 15 GFLOP per detection; pseudo-labels keep the top one); None: all."""
        return self.detect_batch([image], keep_raw, charts)[0]

    @torch.no_grad()
    def detect_batch(self, images: list[torch.Tensor], keep_raw: bool = False,
                     charts: int | None = None) -> list[Detections]:
        """:meth:`detect` of several images, the backbone run on them together. Images whose
        network inputs differ in size are padded to the largest, as detectron2's batched inference
        pads them, which changes results near the smaller ones' borders: :func:`input_shape` tells
        which images batch without it (``spd data densepose --batch-size`` groups them so)."""
        weight = next(self.parameters())
        inputs = [preprocess(image, weight.device) for image in images]
        height = max(x.shape[-2] for x, _ in inputs)
        width = max(x.shape[-1] for x, _ in inputs)
        x = torch.cat([F.pad(x, (0, width - x.shape[-1], 0, height - x.shape[-2])) for x, _ in inputs])
        levels = self.backbone(x.to(weight.dtype))
        return [self._heads([level[i:i + 1] for level in levels], size, tuple(image.shape[-2:]), keep_raw, charts)
                for i, (image, (_, size)) in enumerate(zip(images, inputs))]

    def _heads(self, levels: list[torch.Tensor], size: tuple[int, int], photo: tuple[int, int], keep_raw: bool,
               charts: int | None) -> Detections:
        """One image's detections from its FPN ``levels``; ``size``: its resized size before
        padding, ``photo``: its original (height, width)."""
        height, width = photo
        logits, deltas = self.proposal_generator.rpn_head(levels)
        proposals = []
        for level, (d, stride, anchor) in enumerate(zip(deltas, B.STRIDES, B.ANCHOR_SIZES)):
            anchors = B.grid_anchors(tuple(levels[level].shape[-2:]), stride, anchor, levels[level].device)
            proposals.append(B.apply_deltas(d[0], anchors))
        boxes = B.top_proposals(proposals, [l[0] for l in logits], size)
        heads = self.roi_heads
        features = heads.box_head(B.pool(levels[:4], boxes, 7))
        class_logits, box_deltas = heads.box_predictor(features)
        boxes, scores = B.detections(class_logits, box_deltas, boxes, size, self.config.score_thresh,
                                     self.config.nms_thresh, self.config.detections_per_image)
        # Back to the photo's pixels (detectron2's detector_postprocess); empty boxes go.
        scale = boxes.new_tensor([width / size[1], height / size[0], width / size[1], height / size[0]])
        scaled = B.clip(boxes * scale, (height, width))
        keep = B.nonempty(scaled)
        boxes, scaled, scores = boxes[keep], scaled[keep], scores[keep]
        raw = {}
        wanted = len(boxes) if charts is None else min(charts, len(boxes))
        if wanted:
            # The DensePose head reads the boxes in the network's input, before scaling back.
            dp_levels = [heads.decoder(levels[:4])] if self.config.decoder else levels[:4]
            raw = heads.densepose_predictor(heads.densepose_head(B.pool(dp_levels, boxes[:wanted], 28)))
        results = [chart_result(raw, i, scaled[i]) for i in range(wanted)]
        return Detections(scaled, scores, results, raw if keep_raw else {})
