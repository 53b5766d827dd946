"""The fpn family's encoder: a torchvision ResNet up to its last stage, returning every stage's
features. Module names are torchvision's, so its ImageNet state dicts load as they are (less ``fc``)."""

from __future__ import annotations

import torch
from torch import nn

from ..ops.validation import require_choice
from .resnets import FPN_ENCODERS, RESNETS, STAGE_STRIDES

STEM = ("conv1", "bn1", "relu", "maxpool")
STAGES = ("layer1", "layer2", "layer3", "layer4")


class ResNetEncoder(nn.Module):
    """``forward(x [B, 3, H, W]) -> [f_1, ..., f_4]``, f_i of shape [B, channels[i], H/strides[i], W/strides[i]]."""

    def __init__(self, name: str):
        super().__init__()
        require_choice("encoder", name, FPN_ENCODERS)
        self.depth = FPN_ENCODERS[name]
        net = RESNETS[self.depth].build(weights=None)
        for module_name in STEM + STAGES:
            self.add_module(module_name, getattr(net, module_name))
        self.strides = STAGE_STRIDES
        self.channels = tuple(getattr(net, s)[-1].conv3.out_channels if self.depth >= 50
                              else getattr(net, s)[-1].conv2.out_channels for s in STAGES)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        for name in STEM:
            x = getattr(self, name)(x)
        features = []
        for name in STAGES:
            x = getattr(self, name)(x)
            features.append(x)
        return features
