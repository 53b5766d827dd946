"""The schp family: SCHP's network (Self-Correction for Human Parsing, its ``AugmentCE2P``), for
its published LIP, ATR and Pascal-Person-Part weights (``spd convert schp``).

* Trunk (:class:`SCHPTrunk`): a ResNet-101 with a deep stem (three 3x3 convs: 64 stride 2, 64,
  128; then a 3x3 max pool), the last stage at stride 1 and dilation 2 in every block (output
  stride 16), the pyramid pooling context module on it (bins 1, 2, 3, 6), and the edge module on
  the first three stages. It declares ``layer1`` (256 ch, stride 4), ``context`` (512, 16),
  ``edge_feature`` (768, 4) and ``edge`` (the edge logits, 2, 4).
* Parsing (:class:`SCHPDecoder`, the initial branch): the context and ``layer1`` -> the first
  logits and a 256-channel feature; one refinement stage (:class:`SCHPFusion`): that feature beside
  the edge feature -> the fused logits, which SCHP's own inference reads (protocol
  ``stages: final``).

Every normalisation is :class:`~.activated_norm.ActivatedNorm2d` (InPlaceABN's forward); the
ResNet's own are without activation and followed by ReLU, as SCHP's. Every upsampling inside is
bilinear with ``align_corners=True``, as SCHP's. Module names inside each part are SCHP's, so that
converting its checkpoints is a table of prefixes (:mod:`spd.convert.schp`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .activated_norm import ActivatedNorm2d
from .trunk import FeatureInfo, Trunk

SCHP_BLOCKS = (3, 4, 23, 3)  # ResNet-101
EDGE_FEATURE = 256           # channels of each of the edge module's three features


def _upsample(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def _conv_norm(cin: int, cout: int, kernel: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), ActivatedNorm2d(cout))


class Bottleneck(nn.Module):
    """SCHP's bottleneck: the stride and the dilation in the 3x3 conv."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, dilation: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = ActivatedNorm2d(planes, "none")
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = ActivatedNorm2d(planes, "none")
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = ActivatedNorm2d(planes * 4, "none")
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class DeepStemResNet(nn.Module):
    """``forward(x [B, 3, H, W]) -> (layer1, layer2, layer3, layer4)`` at strides 4, 8, 16, 16."""

    def __init__(self, blocks: Sequence[int] = SCHP_BLOCKS):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = ActivatedNorm2d(64, "none")
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn2 = ActivatedNorm2d(64, "none")
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1, bias=False)
        self.bn3 = ActivatedNorm2d(128, "none")
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.inplanes = 128
        self.layer1 = self._stage(64, blocks[0])
        self.layer2 = self._stage(128, blocks[1], stride=2)
        self.layer3 = self._stage(256, blocks[2], stride=2)
        self.layer4 = self._stage(512, blocks[3], dilation=2)

    def _stage(self, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                       ActivatedNorm2d(planes * 4, "none"))
        layers = [Bottleneck(self.inplanes, planes, stride, dilation, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.maxpool(F.relu(self.bn3(self.conv3(x))))
        x2 = self.layer1(x)
        x3 = self.layer2(x2)
        x4 = self.layer3(x3)
        return x2, x3, x4, self.layer4(x4)


class PSPModule(nn.Module):
    """Pyramid pooling: the map average-pooled to each bin size, 1x1 conv, upsampled; all of them
    beside the map, a 3x3 conv."""

    def __init__(self, cin: int = 2048, cout: int = 512, bins: Sequence[int] = (1, 2, 3, 6)):
        super().__init__()
        self.stages = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(cin, cout, 1, bias=False),
                                                  ActivatedNorm2d(cout)) for b in bins)
        self.bottleneck = _conv_norm(cin + len(bins) * cout, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        return self.bottleneck(torch.cat([_upsample(stage(x), size) for stage in self.stages] + [x], 1))


class EdgeModule(nn.Module):
    """``forward(layer1, layer2, layer3) -> (edge logits [B, 2, h1, w1], edge feature [B, 768, h1, w1])``."""

    def __init__(self, cins: Sequence[int] = (256, 512, 1024), mid: int = EDGE_FEATURE, cout: int = 2):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = (_conv_norm(c, mid) for c in cins)
        self.conv4 = nn.Conv2d(mid, cout, 3, padding=1)
        self.conv5 = nn.Conv2d(cout * 3, cout, 1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = x1.shape[-2:]
        features = [self.conv1(x1), self.conv2(x2), self.conv3(x3)]
        edges = [self.conv4(f) for f in features]
        features = features[:1] + [_upsample(f, size) for f in features[1:]]
        edges = edges[:1] + [_upsample(e, size) for e in edges[1:]]
        return self.conv5(torch.cat(edges, 1)), torch.cat(features, 1)


class SCHPTrunk(Trunk):
    def __init__(self):
        super().__init__()
        self.encoder = DeepStemResNet()
        self.context = PSPModule()
        self.edge = EdgeModule()
        self.feature_info = (FeatureInfo("layer1", 256, 4), FeatureInfo("context", 512, 16),
                             FeatureInfo("edge_feature", 3 * EDGE_FEATURE, 4), FeatureInfo("edge", 2, 4))
        # SCHP's ImageNet weights are its own (deep stem): no torchvision file fits this encoder.
        self.weights_layout, self.depth = "schp", 101

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x1, x2, x3, x4 = self.encoder(x)
        edge, edge_feature = self.edge(x1, x2, x3)
        return {"layer1": x1, "context": self.context(x4), "edge_feature": edge_feature, "edge": edge}


class SCHPDecoder(nn.Module):
    """The initial parsing branch: ``forward(trunk maps) -> (logits [B, K, h1, w1], feature [B, 256, h1, w1])``."""

    source = "layer1"  # the grid of its output
    feature_channels = 256

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv1 = _conv_norm(512, 256)
        self.conv2 = _conv_norm(256, 48)
        self.conv3 = nn.Sequential(nn.Conv2d(304, 256, 1, bias=False), ActivatedNorm2d(256),
                                   nn.Conv2d(256, 256, 1, bias=False), ActivatedNorm2d(256))
        self.conv4 = nn.Conv2d(256, num_classes, 1)

    def drop_unused_feature(self) -> None:
        """The feature is a step towards the logits: nothing to drop."""

    def forward(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        low = features["layer1"]
        x = torch.cat([_upsample(self.conv1(features["context"]), low.shape[-2:]), self.conv2(low)], 1)
        x = self.conv3(x)
        return self.conv4(x), x


class SCHPFusion(nn.Module):
    """SCHP's ``fushion`` head as a refinement stage: the parsing feature beside the trunk's edge
    feature -> the fused logits. It reads no previous outputs. ``forward(previous, feature, trunk)
    -> (logits, feature)``."""

    feature_channels = 256

    def __init__(self, feature_channels: int, edge_channels: int, num_classes: int):
        super().__init__()
        self.fushion = nn.Sequential(nn.Conv2d(feature_channels + edge_channels, 256, 1, bias=False),
                                     ActivatedNorm2d(256), nn.Dropout2d(0.1), nn.Conv2d(256, num_classes, 1))

    def forward(self, previous: Sequence[torch.Tensor], feature: torch.Tensor,
                trunk: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fushion(torch.cat([feature, trunk["edge_feature"]], 1)), feature


def schp_trunk(config) -> Trunk:
    return SCHPTrunk()


def schp_initial(task: str, features, out_channels: int, config) -> SCHPDecoder:
    return SCHPDecoder(out_channels)


def schp_refine(task: str, input_channels: Sequence[int], feature_channels: int, out_channels: int, config,
                features=None) -> SCHPFusion:
    return SCHPFusion(feature_channels, features["edge_feature"].channels, out_channels)
