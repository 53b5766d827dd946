"""Test-time prediction of one image for evaluation: the Predictor's protocol (``spd.predict``),
without its input handling. See ``spd.predict.decode`` for how outputs reach the original size."""

from __future__ import annotations

from dataclasses import asdict

import torch

from ..config.schema import EvalConfig
from ..labels import keypoint_space, label_space
from ..predict.decode import decode_views
from ..predict.fusion import run_views
from ..predict.result import Prediction

__all__ = ["Prediction", "predict_image", "protocol_dict"]


def protocol_dict(protocol: EvalConfig) -> dict:
    return {**asdict(protocol), "resolution": "original (logits resized bilinearly, align_corners=False, then argmax)",
            "metric": "one confusion matrix over the whole set; classes absent from both sides are skipped (nan-mean)"}


@torch.no_grad()
def predict_image(model, image: torch.Tensor, protocol: EvalConfig) -> Prediction:
    """image: uint8 RGB [3, H, W] on the model's device."""
    views = run_views(model, [image], protocol)[0]
    return decode_views(views, protocol, label_space(model.config.parsing_space).classes, keypoint_space().joints)
