"""The network as exported: uint8 RGB in, a tuple of tensors out, no Python objects in between."""

from __future__ import annotations

import torch
from torch import nn

from ..model import SPDNet

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
    test-time choices of the caller); ``stages="all"`` averages every stage's logits as evaluation
    does, ``"final"`` takes the last stage."""

    def __init__(self, model: SPDNet, stages: str = "all"):
        super().__init__()
        self.model, self.stages = model.eval(), stages
        self.names = output_names(model)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        stages = self.model.predict_stages(self.model.normalise(image))
        chosen = stages if self.stages == "all" else stages[-1:]
        out = []
        for name in self.names:
            if name in ("pose", "dp_uv"):  # heatmaps and U, V from the final stage, as at test time
                value = getattr(stages[-1], name)
                out.append(value.flatten(1, 2) if name == "dp_uv" else value)
            else:
                out.append(torch.stack([getattr(s, name) for s in chosen]).mean(0))
        return tuple(out)
