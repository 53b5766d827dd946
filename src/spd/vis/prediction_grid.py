"""A grid of predictions next to the ground truth: image | ground truth | prediction | skeleton."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.image_io import write_image
from ..labels import keypoint_space, label_space
from .contact_sheet import _fit
from .draw import colorize, draw_skeleton


def prediction_row(image: torch.Tensor, truth: torch.Tensor | None, prediction, space: str, height: int = 160) -> np.ndarray:
    rgb = image.permute(1, 2, 0).cpu().numpy()
    blank = np.full_like(rgb, 40)
    palette = label_space(space)
    truth_rgb = colorize(truth.cpu().numpy(), palette) if truth is not None else blank
    pred_rgb = colorize(prediction.parsing.cpu().numpy(), palette) if prediction.parsing is not None else blank
    skeleton = draw_skeleton(rgb, prediction.keypoints.cpu().numpy(), keypoint_space()) if prediction.keypoints is not None else rgb
    tiles = [_fit(t, height) for t in (rgb, truth_rgb, pred_rgb, skeleton)]
    gap = np.full((height, 4, 3), 255, np.uint8)
    return np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1)


def prediction_grid(rows: Sequence[np.ndarray], path: Path | str) -> Path:
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    write_image(path, np.concatenate(padded, axis=0))
    return Path(path)
