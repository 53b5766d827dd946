"""Batch norm with frozen statistics: JPPNet's trunk normalises with its pretrained running mean and
variance in training as at test time, while the affine scale and shift train.

The freeze is a property of the layer, not of a mode flag. A ``BatchNorm2d`` kept in eval mode
does not stay there: Lightning (2.x) neither calls ``train()`` when fitting starts nor afterwards,
restoring each module's ``training`` attribute by assignment after validation, so a trunk that
froze its layers in ``train()`` trained their statistics from 4-image batches; and
``SyncBatchNorm.convert_sync_batchnorm`` (``train.sync_batchnorm``) swaps every ``_BatchNorm`` for a
layer that trains them. :class:`FrozenStatsBatchNorm2d` is not a ``_BatchNorm``, so neither touches
it, and its state dict has ``BatchNorm2d``'s keys, so every weights file loads into it unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FrozenStatsBatchNorm2d(nn.Module):
    """``forward(x [B, C, H, W]) -> [B, C, H, W]``: ``(x - running_mean) / sqrt(running_var + eps) *
    weight + bias`` in every mode; ``weight`` and ``bias`` are parameters, the statistics buffers
    that nothing updates."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        # kept (and never advanced) so that state dicts match BatchNorm2d's key for key
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @classmethod
    def from_batchnorm(cls, bn: nn.BatchNorm2d) -> FrozenStatsBatchNorm2d:
        frozen = cls(bn.num_features, bn.eps).to(bn.weight.device, bn.weight.dtype)
        frozen.load_state_dict(bn.state_dict())  # the same keys
        return frozen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Files written before BatchNorm2d counted its batches (torchvision's ImageNet ones) lack the key.
        state_dict.setdefault(prefix + "num_batches_tracked", torch.tensor(0, dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def freeze_batchnorm_statistics(module: nn.Module) -> nn.Module:
    """``module`` with every ``BatchNorm2d`` inside it replaced by a :class:`FrozenStatsBatchNorm2d`
    holding the same values (in place for children; the converted module is returned)."""
    if isinstance(module, nn.BatchNorm2d):
        return FrozenStatsBatchNorm2d.from_batchnorm(module)
    for name, child in module.named_children():
        converted = freeze_batchnorm_statistics(child)
        if converted is not child:
            setattr(module, name, converted)
    return module
