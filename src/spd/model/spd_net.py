"""The SPD network: a trunk shared by every task, one initial branch per task, refinement stages
in which each task reads the previous stage's outputs of itself and its feeders, and (JPPNet's
training graph) an input pyramid fused per stage. JPPNet, every ablation and the CPU family are
this class with a different :class:`ModelConfig`; each family contributes a trunk builder and a
head design (:data:`FAMILIES`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..ops.tf import legacy_bilinear_resize, legacy_nearest_resize
from ..tasks import get_task
from .config import ModelConfig
from .heads import compact_initial, compact_refine, jppnet_initial, jppnet_refine
from .normalisation import InputNormalisation
from .outputs import ModelOutput, StageOutput
from .schp import schp_initial, schp_refine, schp_trunk
from .trunk import Trunk, dilated_trunk, fpn_trunk

RECORD_VERSION = 2  # the layout of metadata(): 2 = nested family sections, trunk.* keys


@dataclass(frozen=True)
class Family:
    trunk: Callable[[ModelConfig], Trunk]
    initial: Callable          # (task, features, out_channels, family config) -> InitialBranch
    refine: Callable           # (task, input channels, feature channels, out_channels, family config,
                               #  trunk's declared features) -> RefineBranch


FAMILIES = {"dilated": Family(dilated_trunk, jppnet_initial, jppnet_refine),
            "fpn": Family(fpn_trunk, compact_initial, compact_refine),
            "schp": Family(schp_trunk, schp_initial, schp_refine)}


def task_channels(config: ModelConfig) -> dict[str, int]:
    """Output channels of each task's head (each task declares its own)."""
    return {task: get_task(task).channels(config) for task in config.tasks}


class SPDNet(nn.Module):
    """``forward(images) -> ModelOutput``; ``images`` is a normalised float [B, 3, H, W]
    (see :meth:`normalise`). Outputs are at 1/output_stride of the input."""

    def __init__(self, config: ModelConfig, normalisation: InputNormalisation = InputNormalisation()):
        super().__init__()
        self.config, self.normalisation = config, normalisation
        family, section = FAMILIES[config.family], getattr(config, config.family)
        channels = task_channels(config)
        self.trunk = family.trunk(config)
        features = self.trunk.features()
        self.initial = nn.ModuleDict({t: family.initial(t, features, channels[t], section) for t in config.tasks})
        if config.refine_stages == 0:
            for branch in self.initial.values():
                branch.drop_unused_feature()
        reads = {features[branch.source].stride for branch in self.initial.values()}
        if len(reads) != 1:
            raise ValueError(f"the heads read trunk maps of different strides {sorted(reads)}; the tasks' outputs "
                             "must share one grid")
        # Input pixels per output cell: the declared stride of the maps the heads read.
        self.output_stride: int = reads.pop()
        feature_channels = {t: self.initial[t].feature_channels for t in config.tasks}
        self.refine = nn.ModuleList()
        for _ in range(config.refine_stages):
            stage = nn.ModuleDict({t: family.refine(t, [channels[t]] + [channels[f] for f in config.feeders(t)],
                                                    feature_channels[t], channels[t], section, features)
                                   for t in config.tasks})
            feature_channels = {t: stage[t].feature_channels for t in config.tasks}
            self.refine.append(stage)
        if config.family == "dilated" and config.dilated.head_init == "kaiming":
            for module in [*self.initial.modules(), *self.refine.modules()]:
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        self.register_buffer("mean", torch.tensor(normalisation.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(normalisation.std).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) RGB [B, 3, H, W] -> the network's input, computed in float32 and
        returned in the dtype of the network's weights."""
        if self.normalisation.channel_order == "BGR":
            images = images.flip(1)
        x = (images.float() * self.normalisation.scale - self.mean.float()) / self.std.float()
        # In the network's own dtype: bf16-true and 64-true convert these buffers with the weights.
        return x.to(self.mean.dtype)

    def metadata(self) -> dict:
        """What a model file records to rebuild this network (see :mod:`spd.weights`)."""
        return {"version": RECORD_VERSION, "config": asdict(self.config), "normalisation": asdict(self.normalisation)}

    def forward_single(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Raw per-stage outputs at one scale: stage -> task -> tensor."""
        trunk = self.trunk(x)
        outputs, features = {}, {}
        for task, branch in self.initial.items():
            outputs[task], features[task] = branch(trunk)
        stages = [outputs]
        for refine in self.refine:
            previous, outputs, new_features = stages[-1], {}, {}
            for task, branch in refine.items():
                inputs = [previous[task]] + [previous[f] for f in self.config.feeders(task)]
                outputs[task], new_features[task] = branch(inputs, features[task], trunk)
            stages.append(outputs)
            features = new_features
        return stages

    def predict_stages(self, x: torch.Tensor) -> list[StageOutput]:
        """Every stage's outputs at this one input scale (test time runs its own scales)."""
        return [StageOutput.from_raw(s) for s in self.forward_single(x)]

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """JPPNet's training pyramid: the network runs on the input and on copies of int(size * s)
        made with TF1's legacy bilinear resize; each stage's fused output is the mean over scales
        resized to the full-scale output (heatmaps nearest, the rest legacy bilinear)."""
        scales = self.config.train_scales
        if len(scales) == 1:
            return ModelOutput([StageOutput.from_raw(s) for s in self.forward_single(x)])
        h, w = x.shape[-2:]
        per_scale = {s: self.forward_single(x if s == 1.0 else legacy_bilinear_resize(x, (int(h * s), int(w * s))))
                     for s in scales}
        size = next(iter(per_scale[1.0][0].values())).shape[-2:]
        fused = []
        for i, stage in enumerate(per_scale[1.0]):
            fused.append({task: torch.stack([_resize_output(task, per_scale[s][i][task], size) for s in scales]).mean(0)
                          for task in stage})
        return ModelOutput([StageOutput.from_raw(s) for s in fused],
                           {s: [StageOutput.from_raw(st) for st in stages] for s, stages in per_scale.items()})


def _resize_output(task: str, output: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(output.shape[-2:]) == tuple(size):
        return output
    nearest = get_task(task).pyramid_resize == "nearest"
    return legacy_nearest_resize(output, size) if nearest else legacy_bilinear_resize(output, size)
