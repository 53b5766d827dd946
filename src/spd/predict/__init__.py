"""Prediction with a trained model: the Lightning-free Python API behind ``spd predict``."""

from ..inference import Prediction
from ..weights import LoadedModel, load_checkpoint
from .densepose_predictor import DensePosePredictor
from .predictor import Predictor

__all__ = ["DensePosePredictor", "LoadedModel", "Prediction", "Predictor", "load_checkpoint"]
