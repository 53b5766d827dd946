"""DensePose R-CNN's layers in PyTorch + torchvision ops, with detectron2's module names (so that a
model-zoo file loads by name): a ResNet with frozen batch norm and the stride in the 1x1 convs
(MSRA's), an FPN (p2-p6), the RPN head, the Fast R-CNN box head and predictor, the DensePose
decoder (a semantic-FPN head over p2-p5) where the weights have one, the ``DensePoseV1ConvXHead``
and the chart predictor. The box arithmetic is :mod:`.boxes`; assembly and inference are
:mod:`.detector`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

RESNET_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
FPN_CHANNELS = 256
NUM_ANCHORS = 3  # aspect ratios 0.5, 1, 2 at one size per level


class FrozenBatchNorm2d(nn.Module):
    """detectron2's: ``x * scale + shift``, folded from the statistics as detectron2 folds them."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((channels,), value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1).to(x.dtype) + shift.reshape(1, -1, 1, 1).to(x.dtype)


class ConvNorm(nn.Conv2d):
    """detectron2's ``Conv2d`` with a ``norm`` submodule (frozen batch norm) and no bias."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.norm = FrozenBatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(super().forward(x))


class Bottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, stride: int):
        super().__init__()
        self.shortcut = ConvNorm(cin, cout, 1, stride) if cin != cout else None
        self.conv1 = ConvNorm(cin, mid, 1, stride)   # MSRA: the stride in the 1x1 conv
        self.conv2 = ConvNorm(mid, mid, 3, 1, 1)
        self.conv3 = ConvNorm(mid, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x))
        out = F.relu(self.conv2(out))
        out = self.conv3(out)
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = ConvNorm(3, 64, 7, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.conv1(x)), kernel_size=3, stride=2, padding=1)


class ResNet(nn.Module):
    """``forward(x) -> {"res2": stride 4, "res3": 8, "res4": 16, "res5": 32}``."""

    def __init__(self, depth: int = 50):
        super().__init__()
        self.stem = Stem()
        cin = 64
        for i, blocks in enumerate(RESNET_BLOCKS[depth]):
            mid, cout = 64 * 2 ** i, 256 * 2 ** i
            stage = nn.Sequential(*[Bottleneck(cin if b == 0 else cout, mid, cout, 2 if b == 0 and i > 0 else 1)
                                    for b in range(blocks)])
            self.add_module(f"res{i + 2}", stage)
            cin = cout

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.stem(x)
        out = {}
        for name in ("res2", "res3", "res4", "res5"):
            x = out[name] = getattr(self, name)(x)
        return out


class FPN(nn.Module):
    """``forward(x) -> [p2, p3, p4, p5, p6]`` (256 channels; p6 is p5 subsampled, LastLevelMaxPool)."""

    def __init__(self, depth: int = 50):
        super().__init__()
        self.bottom_up = ResNet(depth)
        for level, cin in zip(range(2, 6), (256, 512, 1024, 2048)):
            self.add_module(f"fpn_lateral{level}", nn.Conv2d(cin, FPN_CHANNELS, 1))
            self.add_module(f"fpn_output{level}", nn.Conv2d(FPN_CHANNELS, FPN_CHANNELS, 3, padding=1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        bottom_up = self.bottom_up(x)
        previous = self.fpn_lateral5(bottom_up["res5"])
        results = [self.fpn_output5(previous)]
        for level in (4, 3, 2):
            top_down = F.interpolate(previous, scale_factor=2.0, mode="nearest")
            previous = getattr(self, f"fpn_lateral{level}")(bottom_up[f"res{level}"]) + top_down
            results.insert(0, getattr(self, f"fpn_output{level}")(previous))
        return results + [F.max_pool2d(results[-1], kernel_size=1, stride=2, padding=0)]


class RPNHead(nn.Module):
    """``forward(levels) -> (objectness [N, H*W*A] per level, deltas [N, H*W*A, 4] per level)``, in
    detectron2's order (location-major, then anchor)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(FPN_CHANNELS, FPN_CHANNELS, 3, padding=1)
        self.objectness_logits = nn.Conv2d(FPN_CHANNELS, NUM_ANCHORS, 1)
        self.anchor_deltas = nn.Conv2d(FPN_CHANNELS, NUM_ANCHORS * 4, 1)

    def forward(self, levels: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        logits, deltas = [], []
        for x in levels:
            t = F.relu(self.conv(x))
            n, _, h, w = t.shape
            logits.append(self.objectness_logits(t).permute(0, 2, 3, 1).flatten(1))
            d = self.anchor_deltas(t).view(n, NUM_ANCHORS, 4, h, w).permute(0, 3, 4, 1, 2).flatten(1, -2)
            deltas.append(d)
        return logits, deltas


class BoxHead(nn.Module):
    """FastRCNNConvFCHead with two FC layers: pooled [K, 256, 7, 7] -> [K, 1024]."""

    def __init__(self, resolution: int = 7, dim: int = 1024):
        super().__init__()
        self.fc1 = nn.Linear(FPN_CHANNELS * resolution * resolution, dim)
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))


class BoxPredictor(nn.Module):
    """One class (person) plus background; class-specific box deltas."""

    def __init__(self, dim: int = 1024, classes: int = 1):
        super().__init__()
        self.cls_score = nn.Linear(dim, classes + 1)
        self.bbox_pred = nn.Linear(dim, 4 * classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls_score(x), self.bbox_pred(x)


class ConvReLU(nn.Conv2d):
    """detectron2's ``Conv2d(..., activation=relu)``: one module, so that module indices match."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x))


class Decoder(nn.Module):
    """The DensePose decoder (panoptic FPN's semantic head): p2..p5 each brought to stride 4 by
    3x3 conv + ReLU (+ bilinear x2) steps, summed, a 1x1 conv."""

    def __init__(self, dims: int = 256, classes: int = 256):
        super().__init__()
        for level in range(2, 6):
            ops: list[nn.Module] = []
            for k in range(max(1, level - 2)):
                ops.append(ConvReLU(FPN_CHANNELS if k == 0 else dims, dims, 3, padding=1))
                if level != 2:
                    ops.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.add_module(f"p{level}", nn.Sequential(*ops))
        self.predictor = nn.Conv2d(dims, classes, 1)

    def forward(self, levels: Sequence[torch.Tensor]) -> torch.Tensor:
        x = self.p2(levels[0])
        for level, feature in zip(range(3, 6), levels[1:4]):
            x = x + getattr(self, f"p{level}")(feature)
        return self.predictor(x)


class DensePoseHead(nn.Module):
    """DensePoseV1ConvXHead: ``convs`` 3x3 convs of ``dim`` channels, each with ReLU."""

    def __init__(self, cin: int = FPN_CHANNELS, dim: int = 512, convs: int = 8):
        super().__init__()
        for i in range(convs):
            self.add_module(f"body_conv_fcn{i + 1}", nn.Conv2d(cin if i == 0 else dim, dim, 3, padding=1))
        self.convs = convs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.convs):
            x = F.relu(getattr(self, f"body_conv_fcn{i + 1}")(x))
        return x


class ChartPredictor(nn.Module):
    """DensePoseChartPredictor: transposed convs (kernel 4, stride 2) to the coarse segmentation
    (2), the fine segmentation (25: background and 24 parts) and U and V per part, then bilinear x2.
    ``forward(x [K, 512, 28, 28]) -> dict of [K, C, 112, 112]``."""

    def __init__(self, cin: int = 512, parts: int = 24, coarse: int = 2, kernel: int = 4, up_scale: int = 2):
        super().__init__()

        def deconv(cout: int) -> nn.ConvTranspose2d:
            return nn.ConvTranspose2d(cin, cout, kernel, stride=2, padding=kernel // 2 - 1)

        self.ann_index_lowres = deconv(coarse)
        self.index_uv_lowres = deconv(parts + 1)
        self.u_lowres, self.v_lowres = deconv(parts + 1), deconv(parts + 1)
        self.up_scale = up_scale

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=self.up_scale, mode="bilinear", align_corners=False)

        return {"coarse_segm": up(self.ann_index_lowres(x)), "fine_segm": up(self.index_uv_lowres(x)),
                "u": up(self.u_lowres(x)), "v": up(self.v_lowres(x))}
