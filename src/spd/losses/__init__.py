"""Losses of the three tasks and their weighted sum."""

from .densepose import dp_index_loss, dp_uv_loss
from .parsing import parsing_loss
from .pose import pose_loss
from .total import LossConfig, LossOutput, MultiTaskLoss

__all__ = ["LossConfig", "LossOutput", "MultiTaskLoss", "dp_index_loss", "dp_uv_loss", "parsing_loss", "pose_loss"]
