"""A grid of predictions next to the ground truth, with a header row naming the columns and a
legend of the parsing classes: image | ground truth | prediction | skeleton | DensePose."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..labels import keypoint_space, label_space
from .contact_sheet import join_tiles, write_rows
from .draw import colorize, draw_skeleton, iuv_to_rgb

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


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def header(row_width: int, tile_width: int, names: Sequence[str] = COLUMNS, height: int = 22) -> np.ndarray:
    """Column titles, one centred above each tile of a row whose tiles are ``tile_width`` wide."""
    im = Image.new("RGB", (row_width, height), "white")
    draw, font = ImageDraw.Draw(im), _font(13)
    for i, name in enumerate(names):
        centre = i * (tile_width + GAP) + tile_width / 2
        draw.text((centre, height / 2), name, fill="black", font=font, anchor="mm")
    return np.asarray(im)


def legend(space: str, width: int, swatch: int = 14) -> np.ndarray:
    """The parsing classes with their palette colours, wrapped to ``width`` pixels."""
    labels = label_space(space)
    font = _font(12)
    entries = [(name, tuple(int(c) for c in labels.palette_array()[i])) for i, name in enumerate(labels.classes)]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    sizes = [swatch + 6 + int(probe.textlength(name, font=font)) + 14 for name, _ in entries]
    lines, x = [[]], 0
    for entry, size in zip(entries, sizes):
        if x + size > width and lines[-1]:
            lines.append([])
            x = 0
        lines[-1].append((entry, x))
        x += size
    line_height = swatch + 6
    im = Image.new("RGB", (width, line_height * len(lines) + 4), "white")
    draw = ImageDraw.Draw(im)
    for row, line in enumerate(lines):
        y = 2 + row * line_height
        for (name, colour), x0 in line:
            draw.rectangle([x0, y, x0 + swatch, y + swatch], fill=colour, outline="black")
            draw.text((x0 + swatch + 4, y + swatch / 2), name, fill="black", font=font, anchor="lm")
    return np.asarray(im)


def prediction_grid(rows: Sequence[np.ndarray], path: Path | str, space: str = "lip", height: int = 160) -> Path:
    """Writes the rows under a header, with the class legend below; ``height`` as in :func:`prediction_row`."""
    width = max(r.shape[1] for r in rows)
    tile_width = (rows[0].shape[1] - GAP * (len(COLUMNS) - 1)) // len(COLUMNS)
    return write_rows([header(width, tile_width), *rows, legend(space, width)], path)
