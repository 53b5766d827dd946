"""Prediction with a trained model: the Lightning-free Python API behind ``spd predict``."""

from ..inference import Prediction
from ..weights import LoadedModel, load_checkpoint
from .predictor import Predictor

__all__ = ["LoadedModel", "Prediction", "Predictor", "load_checkpoint"]
