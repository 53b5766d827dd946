"""Prediction with a trained model: the Lightning-free Python API behind ``spd predict``."""

from .checkpoint import LoadedModel, load_checkpoint
from .predictor import Predictor
from .result import Prediction

__all__ = ["LoadedModel", "Prediction", "Predictor", "load_checkpoint"]
