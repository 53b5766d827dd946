"""The typed result of prediction on one image."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..ops.arrays import as_numpy
from ..ops.renamed import renamed


@dataclass
class Prediction:
    """Everything predicted for one image, at its ORIGINAL size (H, W). None for a task the model
    lacks (or an output not asked for).

    parsing:          uint8 [H, W] class ids of ``classes``
    parsing_probs:    float32 [C, H, W] class probabilities (only with ``return_probs``)
    keypoints:        float32 [K, 2] (x, y) in original-image pixels, joints in ``joints`` order
    keypoint_scores:  float32 [K] in [0, 1]: the fused heatmap's peak, clamped (about 1 for a sure joint,
                      0 for none; a heatmap value, not a calibrated probability)
    dp_index:         uint8 [H, W] DensePose part index 0..24 (0 = background)
    dp_uv:            float32 [2, H, W] U, V in [0, 1] of the predicted part (0 on background)
    protocol:         the test-time protocol used (input size, scales, flip, stages, resize, pose decoder)
    source:           the input's name (file, video frame) when known
    extra:            decoded outputs of tasks beyond the built-in ones (see :mod:`spd.tasks`), by name
    """

    parsing: torch.Tensor | None = None
    keypoints: torch.Tensor | None = None
    keypoint_scores: torch.Tensor | None = None
    dp_index: torch.Tensor | None = None
    dp_uv: torch.Tensor | None = None
    parsing_probs: torch.Tensor | None = None
    classes: tuple[str, ...] = ()
    joints: tuple[str, ...] = ()
    protocol: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int] | None:
        """(height, width) of the original image."""
        for t in (self.parsing, self.dp_index, *self.extra.values()):
            if t is not None and t.ndim >= 2:
                return tuple(t.shape[-2:])
        return None

    settings = renamed("settings", "protocol")
    TENSORS = ("parsing", "parsing_probs", "keypoints", "keypoint_scores", "dp_index", "dp_uv")

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Prediction":
        """The same prediction with its tensors on ``device``. ``non_blocking`` copies from a GPU
        asynchronously: the caller must synchronise the stream before reading them."""
        return replace(self, **{n: getattr(self, n).to(device, non_blocking=non_blocking) for n in self.TENSORS
                                if getattr(self, n) is not None},
                       extra={k: v.to(device, non_blocking=non_blocking) for k, v in self.extra.items()})

    def to_numpy(self) -> dict[str, np.ndarray]:
        """The tensors present, as numpy arrays on the CPU (same names and shapes)."""
        named = {n: getattr(self, n) for n in self.TENSORS if getattr(self, n) is not None}
        return {n: as_numpy(t) for n, t in {**named, **self.extra}.items()}
