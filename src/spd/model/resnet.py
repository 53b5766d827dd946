"""The dilated family's encoder: a ResNet with output stride 8, 16 or 32 and (optionally) frozen
batch-norm statistics, in one of two layouts of the same parameters:

* ``"caffe"``: DeepLab-v2's ResNet as JPPNet's official graph computes it. A strided stage puts its
  stride in the first block's 1x1 convs (``conv1`` and the shortcut); a dilated stage dilates the
  3x3 conv of EVERY block (2 in res4, 4 in res5 at output stride 8); the stem's stride-2 conv and
  max-pool pad as TensorFlow's "SAME"; batch-norm epsilon is 1e-3; weights start from
  TensorFlow's default (Glorot uniform). (ResNet-18/34, which DeepLab never had, follow the same
  rules: the stride in the first block's first 3x3 conv, padded as SAME.)
* ``"torchvision"``: torchvision's ResNet v1.5 (stride in the 3x3 conv, the first block of a
  dilated stage at the previous dilation, symmetric padding, epsilon 1e-5), so that torchvision's
  ImageNet files initialise it.

Both keep torchvision's attribute names, so state dicts have the same keys and shapes.
"""

from __future__ import annotations

import torch
from torch import nn

from ..ops.tf import SameConv2d, SameMaxPool2d, glorot_uniform_
from ..ops.validation import require_choice
from .config import LAYOUTS
from .frozen_norm import freeze_batchnorm_statistics
from .resnets import RESNETS

CAFFE_BN_EPS = 1e-3  # TF-slim's batch_norm default
# Dilation of layer1..layer4 for each output stride; a stage at dilation 1 after the first strides.
STAGE_DILATIONS = {8: (1, 1, 2, 4), 16: (1, 1, 1, 2), 32: (1, 1, 1, 1)}


def _dilate_stage(stage: nn.Sequential, dilation: int) -> None:
    """torchvision: removes a stage's stride and dilates its 3x3 convs; the first block keeps the
    previous dilation (dilation // 2), as ``replace_stride_with_dilation`` does."""
    for i, block in enumerate(stage):
        d = dilation // 2 if i == 0 else dilation
        for conv in (m for m in block.modules() if isinstance(m, nn.Conv2d)):
            conv.stride = (1, 1)
            if conv.kernel_size == (3, 3):
                conv.dilation, conv.padding = (d, d), (d, d)


def _to_same(conv: nn.Conv2d) -> SameConv2d:
    same = SameConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, padding=0,
                      dilation=conv.dilation, bias=conv.bias is not None)
    same.load_state_dict(conv.state_dict())
    return same


def _caffe_stage(stage: nn.Sequential, dilation: int, strided: bool) -> None:
    """Caffe / DeepLab-v2: the stride (if any) in the first block's first conv (a 1x1 in a
    bottleneck; in a basic block, its 3x3, padded as SAME) and in its shortcut; ``dilation`` in
    every block's 3x3 convs."""
    for i, block in enumerate(stage):
        for name in ("conv1", "conv2", "conv3"):
            conv = getattr(block, name, None)
            if conv is None:
                continue
            stride = 2 if strided and i == 0 and name == "conv1" else 1
            d = dilation if conv.kernel_size == (3, 3) else 1
            conv.stride, conv.dilation, conv.padding = (stride, stride), (d, d), (d * (conv.kernel_size[0] // 2),) * 2
            if stride > 1 and conv.kernel_size != (1, 1):
                setattr(block, name, _to_same(conv))
        if block.downsample is not None:
            block.downsample[0].stride = (2, 2) if strided else (1, 1)


def _caffe_layout(net: resnet.ResNet, output_stride: int) -> None:
    net.conv1, net.maxpool = _to_same(net.conv1), SameMaxPool2d(3, 2)
    dilations = STAGE_DILATIONS[output_stride]
    for index, (stage, d) in enumerate(zip((net.layer1, net.layer2, net.layer3, net.layer4), dilations)):
        _caffe_stage(stage, d, strided=index > 0 and d == 1)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = CAFFE_BN_EPS
        elif isinstance(m, nn.Conv2d):
            glorot_uniform_(m.weight)


class DilatedResNet(nn.Module):
    """``forward(x) -> (res4, res5)``: [B, C4, H/os, W/os] and [B, C5, H/os, W/os] features
    (sizes rounded up under the caffe layout's SAME padding); C4, C5 = ``channels``.

    With ``frozen_bn`` the batch-norm layers are :class:`~.frozen_norm.FrozenStatsBatchNorm2d`:
    they normalise with their running statistics in every mode (as JPPNet trains), while their
    affine weights still train.
    """

    def __init__(self, depth: int = 101, output_stride: int = 8, frozen_bn: bool = True, layout: str = "torchvision"):
        super().__init__()
        require_choice("backbone depth", depth, tuple(RESNETS))
        if output_stride not in STAGE_DILATIONS:
            raise ValueError(f"output stride must be 8, 16 or 32, got {output_stride}")
        require_choice("backbone layout", layout, LAYOUTS)
        net = RESNETS[depth].build(weights=None)
        if layout == "caffe":
            _caffe_layout(net, output_stride)
        else:
            for stage, d in zip((net.layer3, net.layer4), STAGE_DILATIONS[output_stride][2:]):
                if d > 1:
                    _dilate_stage(stage, d)
        if frozen_bn:
            freeze_batchnorm_statistics(net)
        self.depth, self.output_stride, self.frozen_bn, self.layout = depth, output_stride, frozen_bn, layout
        # torchvision's attribute names, so that its ImageNet state dicts load as they are (less fc).
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.channels = (256, 512) if depth < 50 else (1024, 2048)  # res4, res5

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        res4 = self.layer3(x)
        return res4, self.layer4(res4)
