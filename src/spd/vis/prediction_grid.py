"""A grid of predictions next to the ground truth, with a header row naming the columns and a
legend of the parsing classes: image | ground truth | prediction | skeleton | DensePose."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..labels import keypoint_space, label_space
from .contact_sheet import join_tiles, write_rows
from .draw import colorize, draw_skeleton, iuv_to_rgb
from .legend import font, legend

COLUMNS = ("image", "ground truth", "parsing", "skeleton", "DensePose")
GAP = 4  # white pixels between tiles (join_tiles)


def prediction_row(image: torch.Tensor, truth: torch.Tensor | None, prediction, space: str, height: int = 160) -> np.ndarray:
    """One row of COLUMNS for one image; a task the model lacks is a dark tile."""
    rgb = image.permute(1, 2, 0).cpu().numpy()
    blank = np.full_like(rgb, 40)
    palette = label_space(space)
    truth_rgb = colorize(truth.cpu().numpy(), palette) if truth is not None else blank
    pred_rgb = colorize(prediction.parsing.cpu().numpy(), palette) if prediction.parsing is not None else blank
    skeleton = blank
    if prediction.keypoints is not None:
        skeleton = draw_skeleton(rgb, prediction.keypoints.cpu().numpy(), keypoint_space())
    dense = blank
    if prediction.dp_index is not None:
        dense = iuv_to_rgb(prediction.dp_index.cpu().numpy(), prediction.dp_uv.cpu().numpy())
    return join_tiles((rgb, truth_rgb, pred_rgb, skeleton, dense), height)


def header(row_width: int, tile_width: int, names: Sequence[str] = COLUMNS, height: int = 22) -> np.ndarray:
    """Column titles, one centred above each tile of a row whose tiles are ``tile_width`` wide."""
    im = Image.new("RGB", (row_width, height), "white")
    draw, face = ImageDraw.Draw(im), font(13)
    for i, name in enumerate(names):
        centre = i * (tile_width + GAP) + tile_width / 2
        draw.text((centre, height / 2), name, fill="black", font=face, anchor="mm")
    return np.asarray(im)


def prediction_grid(rows: Sequence[np.ndarray], path: Path | str, space: str = "lip", height: int = 160) -> Path:
    """Writes the rows under a header, with the class legend below; ``height`` as in :func:`prediction_row`."""
    width = max(r.shape[1] for r in rows)
    tile_width = (rows[0].shape[1] - GAP * (len(COLUMNS) - 1)) // len(COLUMNS)
    return write_rows([header(width, tile_width), *rows, legend(space, width)], path)
