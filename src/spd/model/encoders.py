"""Feature encoders of the CPU family, declared as data: each names its torchvision builder, the
modules that make its stages, and each stage's stride and channels. The decoder reads the
strides and channels from here, so swapping the encoder is one name in the config."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models import resnet


@dataclass(frozen=True)
class EncoderSpec:
    builder: object                  # torchvision constructor (weights=None -> random init)
    stem: tuple[str, ...]            # module names applied before the first stage
    stages: tuple[str, ...]          # module names of the stages whose outputs the decoder reads
    strides: tuple[int, ...]         # input pixels per feature cell, per stage
    channels: tuple[int, ...]        # feature channels, per stage
    depth: int                       # ResNet depth, the key of torchvision's ImageNet weights


_RESNET = dict(stem=("conv1", "bn1", "relu", "maxpool"), stages=("layer1", "layer2", "layer3", "layer4"),
               strides=(4, 8, 16, 32))
ENCODERS: dict[str, EncoderSpec] = {
    "resnet18": EncoderSpec(resnet.resnet18, channels=(64, 128, 256, 512), depth=18, **_RESNET),
    "resnet34": EncoderSpec(resnet.resnet34, channels=(64, 128, 256, 512), depth=34, **_RESNET),
    "resnet50": EncoderSpec(resnet.resnet50, channels=(256, 512, 1024, 2048), depth=50, **_RESNET),
}


class Encoder(nn.Module):
    """``forward(x [B, 3, H, W]) -> [f_1, ..., f_n]``, f_i of shape [B, channels[i], H/strides[i], W/strides[i]].

    Module names are torchvision's, so its ImageNet state dicts load as they are (less ``fc``).
    """

    def __init__(self, name: str):
        super().__init__()
        if name not in ENCODERS:
            raise ValueError(f"unknown backbone {name!r}; known: {', '.join(ENCODERS)}")
        self.name, self.spec = name, ENCODERS[name]
        net = self.spec.builder(weights=None)
        for module_name in self.spec.stem + self.spec.stages:
            self.add_module(module_name, getattr(net, module_name))
        self.channels, self.strides, self.depth = self.spec.channels, self.spec.strides, self.spec.depth

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        for name in self.spec.stem:
            x = getattr(self, name)(x)
        features = []
        for name in self.spec.stages:
            x = getattr(self, name)(x)
            features.append(x)
        return features
