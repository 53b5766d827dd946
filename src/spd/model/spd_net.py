"""The SPD network: shared ResNet backbone, one initial branch per task, refinement stages in which
each task reads the previous stage's outputs of itself and its feeders, optional multi-scale
fusion. JPPNet and every ablation are this class with a different :class:`ModelConfig`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .backbone import Backbone
from .branches import InitialBranch, RefineBranch
from .compact_branches import CompactInitialBranch, CompactRefineBranch
from .decoder import TopDownDecoder
from .encoders import Encoder
from .config import NUM_DP_PARTS, ModelConfig
from .outputs import ModelOutput, StageOutput
from .tf_ops import legacy_bilinear_resize, legacy_nearest_resize

# torchvision's ImageNet statistics (RGB, inputs scaled to [0, 1]); recorded in every model.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputNormalisation:
    """``(pixel * scale - mean) / std`` per channel, channels in ``channel_order`` (mean and std
    listed in that order). The default suits torchvision's ImageNet weights; :data:`CAFFE_BGR` is
    the official JPPNet weights' input."""

    channel_order: str = "RGB"
    scale: float = 1.0 / 255.0   # uint8 -> [0, 1] before mean / std
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"normalisation channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")


# JPPNet / DeepLab-v2 (Caffe): BGR 0..255 less the Caffe ImageNet mean, no division.
CAFFE_BGR = InputNormalisation("BGR", 1.0, (104.00698793, 116.66876762, 122.67891434), (1.0, 1.0, 1.0))


def task_channels(config: ModelConfig) -> dict[str, int]:
    return {"parsing": config.num_parsing_classes, "pose": config.num_joints,
            "densepose": (NUM_DP_PARTS + 1) + 2 * NUM_DP_PARTS}


class SPDNet(nn.Module):
    """``forward(images) -> ModelOutput``; ``images`` is a normalised float [B, 3, H, W]
    (see :meth:`normalise`). Outputs are at 1/output_stride of the input."""

    def __init__(self, config: ModelConfig, normalisation: InputNormalisation = InputNormalisation()):
        super().__init__()
        self.config = config
        self.normalisation = normalisation
        channels = task_channels(config)
        if config.family == "fpn":
            self.backbone = Encoder(config.backbone)
            self.decoder = TopDownDecoder(self.backbone.channels, config.decoder_width)
            remap = max(8, config.head_width // 2)
            initial = lambda t: CompactInitialBranch(self.decoder.out_channels, channels[t], config.head_width,
                                                     config.branch_convs)
            refine = lambda t, inputs, feature: CompactRefineBranch(inputs, feature, channels[t], config.head_width,
                                                                    remap, config.refine_fuse)
        else:
            self.backbone = Backbone(config.depth, config.output_stride, config.frozen_bn, config.layout)
            self.decoder = None
            res4, res5 = self.backbone.channels
            initial = lambda t: InitialBranch(t, res4, res5, channels[t], config.width)
            refine = lambda t, inputs, feature: RefineBranch(t, inputs, feature, channels[t], config.width)
        self.initial = nn.ModuleDict({t: initial(t) for t in config.tasks})
        features = {t: self.initial[t].feature_channels for t in config.tasks}
        self.refine = nn.ModuleList()
        for _ in range(config.refine_stages):
            stage = nn.ModuleDict()
            for t in config.tasks:
                stage[t] = refine(t, [channels[t]] + [channels[f] for f in config.feeders(t)], features[t])
            features = {t: stage[t].feature_channels for t in config.tasks}
            self.refine.append(stage)
        # The fpn family's branches carry batch norm and initialise themselves (He, small outputs).
        if config.family == "dilated" and config.head_init == "kaiming":
            for module in [*self.initial.modules(), *self.refine.modules()]:
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        self.register_buffer("mean", torch.tensor(normalisation.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(normalisation.std).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) RGB [B, 3, H, W] -> the network's input."""
        if self.normalisation.channel_order == "BGR":
            images = images.flip(1)
        return (images.float() * self.normalisation.scale - self.mean) / self.std

    def trunk_parameters(self) -> list[nn.Parameter]:
        """The parameters every task shares (backbone and, in the CPU family, its decoder)."""
        return [*self.backbone.parameters(), *(self.decoder.parameters() if self.decoder is not None else ())]

    def metadata(self) -> dict:
        return {"config": asdict(self.config), "normalisation": asdict(self.normalisation)}

    def forward_single(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Raw per-stage outputs at one scale: stage -> task -> tensor."""
        # What the initial branches read: (res4, res5) of the dilated backbone, or the decoder's map.
        trunk = (self.decoder(self.backbone(x)),) if self.decoder is not None else self.backbone(x)
        outputs, features = {}, {}
        for task, branch in self.initial.items():
            outputs[task], features[task] = branch(*trunk)
        stages = [outputs]
        for refine in self.refine:
            previous, outputs, new_features = stages[-1], {}, {}
            for task, branch in refine.items():
                inputs = [previous[task]] + [previous[f] for f in self.config.feeders(task)]
                outputs[task], new_features[task] = branch(inputs, features[task])
            stages.append(outputs)
            features = new_features
        return stages

    def predict_stages(self, x: torch.Tensor) -> list[StageOutput]:
        """Every stage's outputs at this one input scale (test time runs its own scales)."""
        return [StageOutput.from_raw(s) for s in self.forward_single(x)]

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """Multi-scale as JPPNet trains: the network runs on the input and on copies of
        int(size * s) made with TF1's legacy bilinear resize; each stage's fused output is the mean
        over scales resized to the full-scale output (heatmaps nearest, the rest legacy bilinear)."""
        if len(self.config.scales) == 1:
            return ModelOutput([StageOutput.from_raw(s) for s in self.forward_single(x)])
        h, w = x.shape[-2:]
        per_scale = {s: self.forward_single(x if s == 1.0 else legacy_bilinear_resize(x, (int(h * s), int(w * s))))
                     for s in self.config.scales}
        size = next(iter(per_scale[1.0][0].values())).shape[-2:]
        fused = []
        for i, stage in enumerate(per_scale[1.0]):
            fused.append({task: torch.stack([_resize_output(task, per_scale[s][i][task], size)
                                             for s in self.config.scales]).mean(0) for task in stage})
        return ModelOutput([StageOutput.from_raw(s) for s in fused],
                           {s: [StageOutput.from_raw(st) for st in stages] for s, stages in per_scale.items()})


def _resize_output(task: str, output: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(output.shape[-2:]) == tuple(size):
        return output
    return legacy_nearest_resize(output, size) if task == "pose" else legacy_bilinear_resize(output, size)
