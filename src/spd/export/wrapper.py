"""The network as exported: uint8 RGB in, a tuple of tensors out, no Python objects in between."""

from __future__ import annotations

import torch
from torch import nn

from ..model import SPDNet, fuse_stages
from ..tasks import get_task


def output_descriptions(model: SPDNet) -> dict[str, str]:
    """The exported outputs of the model's tasks, in order: name -> shape and meaning (each
    task's declaration)."""
    return {o.name: o.description for task in model.config.tasks for o in get_task(task).outputs}


def output_names(model: SPDNet) -> tuple[str, ...]:
    return tuple(output_descriptions(model))


class ExportWrapper(nn.Module):
    """``forward(image uint8 [B, 3, H, W] RGB) -> tuple`` of the outputs of the model's tasks
    (:func:`output_descriptions`), each [B, C, h, w] (extra dimensions folded into C), at
    h = ceil(H / output_stride). Normalisation is inside; one scale, no mirror (those are
    test-time choices of the caller); the stages are fused as the Predictor and evaluation fuse
    them (:func:`~spd.model.fuse_stages`: ``"all"`` or ``"final"``)."""

    def __init__(self, model: SPDNet, stages: str = "all"):
        super().__init__()
        self.model, self.stages = model.eval(), stages
        self.names = output_names(model)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        fused = fuse_stages(self.model.predict_stages(self.model.normalise(image)), self.stages)
        return tuple(fused.get(name).flatten(1, -3) for name in self.names)
