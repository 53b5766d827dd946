"""SCHP's normalisation layer, InPlaceABN, computed as its own op computes it, in PyTorch.

InPlaceABN (a C++ / CUDA extension) normalises with the running statistics and then scales by
``|weight| + eps``, not by ``weight`` (``forward_cpu`` in its ``inplace_abn_cpu.cpp``): its
backward inverts the affine step, which needs a positive scale. A plain ``BatchNorm2d`` with the
same parameters differs in every channel whose learned scale is negative, which is why SCHP's
weights in a plain batch norm give wrong masks. The activation follows: leaky ReLU (slope 0.01)
or none.

The statistics are always the running ones: this layer serves converted weights (inference,
evaluation, export), as :class:`~.frozen_norm.FrozenStatsBatchNorm2d` serves JPPNet's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("leaky_relu", "none")


class ActivatedNorm2d(nn.Module):
    """``[B, C, H, W] -> [B, C, H, W]``: ``(x - mean) / sqrt(var + eps) * (|weight| + eps) + bias``,
    then the activation. State-dict keys as SCHP's: weight, bias, running_mean, running_var."""

    def __init__(self, channels: int, activation: str = "leaky_relu", slope: float = 0.01, eps: float = 1e-5):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.activation, self.slope, self.eps = activation, slope, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight.abs() + self.eps, self.bias,
                         training=False, eps=self.eps)
        return F.leaky_relu(x, self.slope) if self.activation == "leaky_relu" else x

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, activation={self.activation}, slope={self.slope}, eps={self.eps}"
