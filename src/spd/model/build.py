"""Builds a model from its config and, optionally, backbone weights."""

from __future__ import annotations

import logging
from pathlib import Path

from .config import ModelConfig
from .spd_net import SPDNet
from .weights import load_backbone_weights

log = logging.getLogger(__name__)


def build_model(config: ModelConfig, backbone_weights: str | Path | None = None, allow_download: bool = True) -> SPDNet:
    """``backbone_weights``: None (random initialisation), ``"imagenet"`` or a state-dict path."""
    model = SPDNet(config)
    if backbone_weights is not None:
        source = load_backbone_weights(model.backbone, backbone_weights, allow_download=allow_download)
        log.info("backbone weights loaded from %s", source)
    return model
