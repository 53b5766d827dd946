"""Test time: a model's outputs on any image -> predictions at the image's own size, under a
protocol (input size, scales, mirror, stages, resize policy, pose decoder). Validation, evaluation,
the Predictor and export share it."""

from .decode import decode_views
from .precision import PrecisionChoice, resolve_precision
from .protocol import INFERENCE_PRECISIONS, predict_batch, predict_image, protocol_dict
from .result import Prediction
from .settings import INTERPOLATIONS, POSE_DECODERS, RESIZE_POLICIES, EvalConfig
from .views import Views, run_views

__all__ = ["EvalConfig", "INFERENCE_PRECISIONS", "PrecisionChoice", "INTERPOLATIONS", "POSE_DECODERS", "Prediction", "RESIZE_POLICIES", "Views", "decode_views",
           "predict_batch", "predict_image", "protocol_dict", "resolve_precision", "run_views"]
