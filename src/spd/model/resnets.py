"""The ResNets a trunk can be built on, one table: depth -> torchvision's builder, its ImageNet
weights, and whether the fpn family offers it (as ``model.fpn.encoder: resnetN``; the dilated
family takes every depth, ``model.dilated.depth``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torchvision.models import resnet


@dataclass(frozen=True)
class ResNetSpec:
    depth: int
    build: Callable[..., resnet.ResNet]   # torchvision's builder (``weights=None``: random weights)
    imagenet: resnet.WeightsEnum          # the ImageNet file that fits it
    fpn: bool                             # offered to the fpn family (the CPU family stops at ResNet-50)

    @property
    def name(self) -> str:
        return f"resnet{self.depth}"


RESNETS = {spec.depth: spec for spec in (
    ResNetSpec(18, resnet.resnet18, resnet.ResNet18_Weights.IMAGENET1K_V1, fpn=True),
    ResNetSpec(34, resnet.resnet34, resnet.ResNet34_Weights.IMAGENET1K_V1, fpn=True),
    ResNetSpec(50, resnet.resnet50, resnet.ResNet50_Weights.IMAGENET1K_V1, fpn=True),
    ResNetSpec(101, resnet.resnet101, resnet.ResNet101_Weights.IMAGENET1K_V1, fpn=False),
)}
# ``model.fpn.encoder`` names -> depth
FPN_ENCODERS = {spec.name: depth for depth, spec in RESNETS.items() if spec.fpn}
# The strides of a torchvision ResNet's four stages; the fpn family decodes to the first.
STAGE_STRIDES = (4, 8, 16, 32)
