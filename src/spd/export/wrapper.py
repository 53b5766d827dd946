"""The network as exported: uint8 RGB in, a tuple of tensors out, no Python objects in between."""

from __future__ import annotations

import torch
from torch import nn

from ..model import SPDNet, fuse_stages

OUTPUTS = {
    "parsing": "[B, C, h, w] parsing logits (C classes of the label space)",
    "pose": "[B, 16, h, w] keypoint heatmaps (LIP joint order)",
    "dp_index": "[B, 25, h, w] DensePose part logits (0 = background)",
    "dp_uv": "[B, 48, h, w] DensePose U of parts 1..24, then V of parts 1..24, in [0, 1]",
}
TASK_OUTPUTS = {"parsing": ("parsing",), "pose": ("pose",), "densepose": ("dp_index", "dp_uv")}


def output_names(model: SPDNet) -> tuple[str, ...]:
    return tuple(name for task in model.config.tasks for name in TASK_OUTPUTS[task])


class ExportWrapper(nn.Module):
    """``forward(image uint8 [B, 3, H, W] RGB) -> tuple`` of :data:`OUTPUTS` for the model's tasks,
    at h = ceil(H / output_stride). Normalisation is inside; one scale, no mirror (those are
    test-time choices of the caller); the stages are fused as the Predictor and evaluation fuse
    them (:func:`~spd.model.fuse_stages`: ``"all"`` or ``"final"``)."""

    def __init__(self, model: SPDNet, stages: str = "all"):
        super().__init__()
        self.model, self.stages = model.eval(), stages
        self.names = output_names(model)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        fused = fuse_stages(self.model.predict_stages(self.model.normalise(image)), self.stages)
        return tuple(fused.dp_uv.flatten(1, 2) if name == "dp_uv" else getattr(fused, name) for name in self.names)
