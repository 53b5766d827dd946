"""Training with Lightning: the module, the data module, checkpoints that resume exactly, logs, and
the ``train`` API that ``spd train``, the demo and the study call."""

from .train import TrainResult, train

__all__ = ["TrainResult", "train"]
