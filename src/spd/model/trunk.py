"""Trunks: the shared part of the network. A trunk returns named feature maps and declares them as
data (name, channels, stride), as timm's ``feature_info`` does; the task heads read only that
declaration. Its ``encoder`` is a ResNet with torchvision's module names, to which pretrained
weights attach (:mod:`.pretrained`): ``weights_layout`` says which weights fit it.

One builder per family: :func:`dilated_trunk` (JPPNet's dilated ResNet, res4 and res5) and
:func:`fpn_trunk` (a ResNet encoder and a top-down decoder, one stride-4 map).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import DilatedConfig, FPNConfig, ModelConfig
from .decoder import TopDownDecoder
from .encoders import ResNetEncoder
from .resnet import DilatedResNet


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    channels: int
    stride: int     # input pixels per feature cell


class Trunk(nn.Module):
    """``forward(x [B, 3, H, W]) -> {name: [B, channels, ~H/stride, ~W/stride]}`` for each entry of
    ``feature_info``."""

    feature_info: tuple[FeatureInfo, ...]
    encoder: nn.Module
    weights_layout: str   # "torchvision" or "caffe": the layout of the weights files that fit ``encoder``
    depth: int            # the encoder's ResNet depth (which ImageNet file fits it)

    def features(self) -> "DeclaredFeatures":
        return DeclaredFeatures({f.name: f for f in self.feature_info})


class DeclaredFeatures(dict):
    """A trunk's declaration by name; a head that asks for a map the trunk does not declare is told
    which ones it does."""

    def __missing__(self, name: str) -> FeatureInfo:
        raise KeyError(f"the heads read a trunk map {name!r}, which this trunk does not declare "
                       f"(it declares {', '.join(self) or 'none'})")


class DilatedTrunk(Trunk):
    def __init__(self, config: DilatedConfig):
        super().__init__()
        self.encoder = DilatedResNet(config.depth, config.output_stride, config.frozen_bn, config.layout)
        res4, res5 = self.encoder.channels
        self.feature_info = (FeatureInfo("res4", res4, config.output_stride),
                             FeatureInfo("res5", res5, config.output_stride))
        self.weights_layout, self.depth = config.layout, config.depth

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        res4, res5 = self.encoder(x)
        return {"res4": res4, "res5": res5}


class FPNTrunk(Trunk):
    def __init__(self, config: FPNConfig):
        super().__init__()
        self.encoder = ResNetEncoder(config.encoder)
        self.decoder = TopDownDecoder(self.encoder.channels, config.decoder_width)
        self.feature_info = (FeatureInfo("p2", config.decoder_width, self.encoder.strides[0]),)
        self.weights_layout, self.depth = "torchvision", self.encoder.depth

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"p2": self.decoder(self.encoder(x))}


def dilated_trunk(config: ModelConfig) -> Trunk:
    return DilatedTrunk(config.dilated)


def fpn_trunk(config: ModelConfig) -> Trunk:
    return FPNTrunk(config.fpn)
