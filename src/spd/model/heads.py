"""The heads' design of each family: the layers of an initial branch and of a refinement stage
(:mod:`.branches` connects them), built from the trunk's declared features.

* ``jppnet_*`` (dilated family): JPPNet's heads. Parsing reads res5 (``fc1_human``: summed dilated
  3x3 convs; its feature: 3x3 512, 3x3 256); pose and DensePose read res4 (``pose_net``: six 3x3
  convs, the sixth the feature, then 1x1 512 and a 1x1 output). Refinement: 1x1 remaps to 128 with
  ReLU, 3x3 512, 5x5, 7x7, 9x9 256 (the new feature), 1x1 256, the task's output conv. No batch
  norm; widths scaled by ``width`` (1.0: JPPNet's).
* ``compact_*`` (fpn family): one 3x3 conv (batch norm, ReLU) on the decoder's map makes the
  task's feature, a 1x1 conv the output; refinement: 1x1 remaps, a 1x1 fusing conv and a dilated
  3x3 conv (wider context at no extra cost), a 1x1 output conv.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..tasks import get_task
from .branches import InitialBranch, RefineBranch
from .config import DilatedConfig, FPNConfig
from .layers import ConvStack, DilatedSum, conv, conv_bn_relu
from .trunk import FeatureInfo

JPPNET_HEADS = {
    "pose_trunk": [(3, 512), (3, 512), (3, 256), (3, 256), (3, 256), (3, 256)],  # pose_net; last = feature
    "pose_out": [(1, 512)],
    "parsing_feature": [(3, 512), (3, 256)],
    "refine_trunk": [(3, 512), (5, 256), (7, 256), (9, 256)],  # last = the stage's new feature
    "refine_out": [(1, 256)],
    "remap": 128,
}


def scaled(spec: Sequence[tuple[int, int]], width: float) -> list[tuple[int, int]]:
    return [(k, max(8, round(c * width))) for k, c in spec]


class OutputHead(nn.Module):
    """JPPNet's output convs: parsing ends in the summed dilated convs; pose and DensePose in a 1x1
    conv (no ReLU)."""

    def __init__(self, task: str, cin: int, cout: int, init: str = "jppnet"):
        super().__init__()
        fc1_human = get_task(task).jppnet_head == "fc1_human"
        self.head = DilatedSum(cin, cout, init=init) if fc1_human else conv(cin, cout, 1, relu=False, init=init)

    def forward(self, x):
        return self.head(x)


def jppnet_initial(task: str, features: dict[str, FeatureInfo], out_channels: int,
                   config: DilatedConfig) -> InitialBranch:
    # The parsing convs belong to JPPNet's backbone graph (kaffe layers) and start from Glorot.
    if get_task(task).jppnet_head == "fc1_human":
        res5 = features["res5"].channels
        out = OutputHead(task, res5, out_channels, init="glorot")
        feature = ConvStack(res5, scaled(JPPNET_HEADS["parsing_feature"], config.width), init="glorot")
        return InitialBranch("res5", feature, out, feature.out_channels, out_reads_source=True)
    feature = ConvStack(features["res4"].channels, scaled(JPPNET_HEADS["pose_trunk"], config.width))
    mid = ConvStack(feature.out_channels, scaled(JPPNET_HEADS["pose_out"], config.width))
    return InitialBranch("res4", feature, nn.Sequential(mid, OutputHead(task, mid.out_channels, out_channels)),
                         feature.out_channels)


def jppnet_refine(task: str, input_channels: Sequence[int], feature_channels: int, out_channels: int,
                  config: DilatedConfig, features: dict[str, FeatureInfo] | None = None) -> RefineBranch:
    remap = max(8, round(JPPNET_HEADS["remap"] * config.width))
    remaps = [conv(c, remap, 1) for c in input_channels]
    trunk = ConvStack(remap * len(input_channels) + feature_channels, scaled(JPPNET_HEADS["refine_trunk"], config.width))
    mid = ConvStack(trunk.out_channels, scaled(JPPNET_HEADS["refine_out"], config.width))
    return RefineBranch(remaps, trunk, nn.Sequential(mid, OutputHead(task, mid.out_channels, out_channels)),
                        trunk.out_channels)


def output_conv(cin: int, cout: int) -> nn.Conv2d:
    # PyTorch's default initialisation (uniform, fan-in scaled). N(0, 0.01) weights, which give
    # near-uniform initial logits, learned a third slower from scratch: 9.9 against 14.2 mIoU
    # after 300 CPU s for cpu_s without refinement.
    return nn.Conv2d(cin, cout, 1)


def compact_initial(task: str, features: dict[str, FeatureInfo], out_channels: int, config: FPNConfig) -> InitialBranch:
    width = config.head_width
    feature = nn.Sequential(conv_bn_relu(features["p2"].channels, width))
    return InitialBranch("p2", feature, output_conv(width, out_channels), width)


def compact_refine(task: str, input_channels: Sequence[int], feature_channels: int, out_channels: int,
                   config: FPNConfig, features: dict[str, FeatureInfo] | None = None) -> RefineBranch:
    width, remap = config.head_width, max(8, config.head_width // 2)
    remaps = [conv_bn_relu(c, remap, 1) for c in input_channels]
    trunk = nn.Sequential(conv_bn_relu(remap * len(input_channels) + feature_channels, width, 1),
                          conv_bn_relu(width, width, dilation=2))
    return RefineBranch(remaps, trunk, output_conv(width, out_channels), width)
