"""Test-time prediction under a protocol: views (:mod:`.views`), then each image's original size
(:mod:`.decode`). Validation, evaluation, the demo and the Predictor all predict through
:func:`predict_batch`."""

from __future__ import annotations

import contextlib
from dataclasses import asdict

import torch

from ..labels import keypoint_space, label_space
from ..ops.validation import require_choice
from .decode import decode_views
from .precision import PRECISIONS, PrecisionChoice, resolve_precision
from .result import Prediction
from .settings import EvalConfig
from .views import run_views

__all__ = ["INFERENCE_PRECISIONS", "Prediction", "PrecisionChoice", "resolve_precision", "predict_batch", "predict_image", "protocol_dict"]

INFERENCE_PRECISIONS = PRECISIONS  # "auto" is resolved (resolve_precision) before predict_batch
NETWORK_PRECISIONS = ("32", "bf16")


def protocol_dict(protocol: EvalConfig) -> dict:
    resize = {"tf_legacy": "TensorFlow 1's legacy resize", "align_corners": "upsampled to the canvas "
              "(align_corners=True), warped back bilinearly (SCHP's)"}.get(protocol.interpolation,
                                                                           "resized bilinearly, align_corners=False")
    return {**asdict(protocol), "resolution": f"original (logits {resize}, then argmax)",
            "metric": "one confusion matrix over the whole set; classes absent from both sides are skipped (nan-mean)"}


@torch.no_grad()
def predict_batch(model, images: list[torch.Tensor], protocol: EvalConfig, precision: str = "32",
                  return_probs: bool = False) -> list[Prediction]:
    """images: uint8 RGB [3, H, W] of any sizes, on the model's device; one Prediction per image, on
    that device too. ``precision``: ``"bf16"`` runs the network under bfloat16 autocast; ``"32"``
    adds none (inside Lightning's validation the trainer's own autocast stays in force). The views
    hold float32 maps, so resizing to each image and decoding stay in float32."""
    require_choice("precision", precision, NETWORK_PRECISIONS)
    if not images:
        return []
    # autocast(enabled=False) would switch off an autocast around the call: only enter one for bf16
    bf16 = torch.autocast(images[0].device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with bf16:
        views = run_views(model, images, protocol)
    classes, joints = label_space(model.config.parsing_space).classes, keypoint_space().joints
    return [decode_views(v, protocol, classes, joints, return_probs, model.config.tasks) for v in views]


def predict_image(model, image: torch.Tensor, protocol: EvalConfig, precision: str = "32") -> Prediction:
    """:func:`predict_batch` of one image."""
    return predict_batch(model, [image], protocol, precision)[0]
