"""ResNet backbone (torchvision) with output stride 8 or 16 and frozen batch-norm statistics.

JPPNet uses DeepLab-v2 ResNet-101 at output stride 8: res4 and res5 keep the stride-8 resolution
and dilate their 3x3 convolutions by 2 and 4. We apply that to any torchvision ResNet after
construction (the same module settings as ``replace_stride_with_dilation``, which torchvision
refuses for the BasicBlock nets ResNet-18/34 that CPU runs and tests use).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet

DEPTHS = {18: resnet.resnet18, 34: resnet.resnet34, 50: resnet.resnet50, 101: resnet.resnet101}


def _dilate_stage(stage: nn.Sequential, dilation: int) -> None:
    """Removes a stage's stride and dilates its 3x3 convs: the first block keeps the previous
    dilation (dilation // 2) as torchvision does, the others use ``dilation``."""
    for i, block in enumerate(stage):
        d = dilation // 2 if i == 0 else dilation
        for conv in (m for m in block.modules() if isinstance(m, nn.Conv2d)):
            conv.stride = (1, 1)
            if conv.kernel_size == (3, 3):
                conv.dilation, conv.padding = (d, d), (d, d)


class Backbone(nn.Module):
    """``forward(x) -> (res4, res5)``: [B, C4, H/os, W/os] and [B, C5, H/os, W/os] features.

    With ``frozen_bn`` the batch-norm layers always use their running statistics (as JPPNet
    trains), while their affine weights still train.
    """

    def __init__(self, depth: int = 101, output_stride: int = 8, frozen_bn: bool = True):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"backbone depth {depth} is not one of {sorted(DEPTHS)}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output stride must be 8, 16 or 32, got {output_stride}")
        net = DEPTHS[depth](weights=None)
        if output_stride <= 16:
            _dilate_stage(net.layer4, 2 if output_stride == 16 else 4)
        if output_stride == 8:
            _dilate_stage(net.layer3, 2)
        self.depth, self.output_stride, self.frozen_bn = depth, output_stride, frozen_bn
        # torchvision's attribute names, so that its ImageNet state dicts load as they are (less fc).
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.channels = (256, 512) if depth < 50 else (1024, 2048)  # res4, res5

    def train(self, mode: bool = True) -> "Backbone":
        super().train(mode)
        if self.frozen_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        res4 = self.layer3(x)
        return res4, self.layer4(res4)
