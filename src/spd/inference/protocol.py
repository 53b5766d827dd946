"""Test-time prediction of one image under a protocol: views (:mod:`.views`), then the original
size (:mod:`.decode`). Evaluation calls it per image; the Predictor runs the same two steps in batches."""

from __future__ import annotations

from dataclasses import asdict

import torch

from ..labels import keypoint_space, label_space
from .decode import decode_views
from .result import Prediction
from .settings import EvalConfig
from .views import run_views

__all__ = ["Prediction", "predict_image", "protocol_dict"]


def protocol_dict(protocol: EvalConfig) -> dict:
    return {**asdict(protocol), "resolution": "original (logits resized bilinearly, align_corners=False, then argmax)",
            "metric": "one confusion matrix over the whole set; classes absent from both sides are skipped (nan-mean)"}


@torch.no_grad()
def predict_image(model, image: torch.Tensor, protocol: EvalConfig, precision: str = "32") -> Prediction:
    """image: uint8 RGB [3, H, W] on the model's device; the prediction is on that device too.
    ``precision``: ``"32"``, or ``"bf16"`` for the network under bfloat16 autocast (the outputs'
    resizing and decoding stay in float32)."""
    with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        views = run_views(model, [image], protocol)[0]
    return decode_views(views, protocol, label_space(model.config.parsing_space).classes, keypoint_space().joints)
