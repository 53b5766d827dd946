"""A grid of predictions next to the ground truth: image | ground truth | prediction | skeleton."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..labels import keypoint_space, label_space
from .contact_sheet import join_tiles, write_rows
from .draw import colorize, draw_skeleton


def prediction_row(image: torch.Tensor, truth: torch.Tensor | None, prediction, space: str, height: int = 160) -> np.ndarray:
    rgb = image.permute(1, 2, 0).cpu().numpy()
    blank = np.full_like(rgb, 40)
    palette = label_space(space)
    truth_rgb = colorize(truth.cpu().numpy(), palette) if truth is not None else blank
    pred_rgb = colorize(prediction.parsing.cpu().numpy(), palette) if prediction.parsing is not None else blank
    skeleton = draw_skeleton(rgb, prediction.keypoints.cpu().numpy(), keypoint_space()) if prediction.keypoints is not None else rgb
    return join_tiles((rgb, truth_rgb, pred_rgb, skeleton), height)


def prediction_grid(rows: Sequence[np.ndarray], path: Path | str) -> Path:
    return write_rows(rows, path)
