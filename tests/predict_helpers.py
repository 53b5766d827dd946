"""Shared by the prediction tests: a small checkpoint in the format training writes, and a stub
network whose outputs are chosen by the test."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from spd.config import load_config
from spd.model import StageOutput, preset
from spd.model.config import NUM_DP_PARTS

TINY = ["model.preset=cpu_spd", "model.fpn.decoder_width=16", "model.fpn.head_width=16", "eval.input_size=[64, 48]"]


def write_checkpoint(path: Path, overrides: list[str] = TINY, seed: int = 0) -> Path:
    """A checkpoint as Lightning writes it during training (hyper_parameters, state_dict, spd)."""
    from spd.training.module import SPDModule

    torch.manual_seed(seed)
    _, resolved = load_config(None, overrides)
    module = SPDModule(resolved, initialise=False)
    ckpt = {"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    torch.save(ckpt, path)
    return path


class StubNet(nn.Module):
    """The interface the Predictor uses (config, normalise, predict_stages) on a random strided
    conv: NOT mirror-symmetric, so flip test-time augmentation has something to fix."""

    def __init__(self, seed: int = 0, stride: int = 4):
        super().__init__()
        self.config = preset("cpu_spd")
        torch.manual_seed(seed)
        channels = self.config.num_parsing_classes + self.config.num_joints + 3 * NUM_DP_PARTS + 1
        self.conv = nn.Conv2d(3, channels, 5, stride=stride, padding=2)
        self.heatmap = None  # a test may set a function (h, w) -> [K, h, w] to replace the pose output

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return images.float() / 255.0

    def predict_stages(self, x: torch.Tensor) -> list[StageOutput]:
        c, k = self.config.num_parsing_classes, self.config.num_joints
        raw = self.conv(x)
        b, _, h, w = raw.shape
        pose = raw[:, c:c + k]
        if self.heatmap is not None:
            pose = self.heatmap(x.shape[-2:], (h, w)).expand(b, -1, -1, -1)
        dense = raw[:, c + k:]
        out = StageOutput(parsing=raw[:, :c], pose=pose, dp_index=dense[:, :NUM_DP_PARTS + 1],
                          dp_uv=torch.sigmoid(dense[:, NUM_DP_PARTS + 1:]).reshape(b, 2, NUM_DP_PARTS, h, w))
        return [out, out]
