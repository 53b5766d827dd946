"""A contact sheet: one row per sample with image | parsing | skeleton | IUV side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.image_io import write_image
from ..data.sample import Sample
from ..labels import keypoint_space, label_space
from .draw import colorize, draw_skeleton, iuv_to_rgb


def _fit(tile: np.ndarray, height: int) -> np.ndarray:
    h, w = tile.shape[:2]
    width = max(1, round(w * height / h))
    return np.asarray(Image.fromarray(tile).resize((width, height), Image.NEAREST))


def sample_row(sample: Sample, height: int = 160) -> np.ndarray:
    image = sample.image.permute(1, 2, 0).numpy()
    blank = np.full_like(image, 40)
    parsing = colorize(sample.parsing.numpy(), label_space(sample.label_space)) if sample.has_parsing else blank
    skeleton = image
    if sample.has_pose:
        kp = np.concatenate([sample.keypoints.numpy(), sample.visibility.numpy()[:, None]], axis=1)
        skeleton = draw_skeleton(image, kp, keypoint_space())
    iuv = iuv_to_rgb(sample.dp_index.numpy(), sample.dp_uv.numpy()) if sample.has_densepose else blank
    return join_tiles((image, parsing, skeleton, iuv), height)


def join_tiles(tiles: Sequence[np.ndarray], height: int) -> np.ndarray:
    """One row: tiles resized to ``height`` with white gaps between them."""
    fitted = [_fit(t, height) for t in tiles]
    gap = np.full((height, 4, 3), 255, np.uint8)
    return np.concatenate([x for t in fitted for x in (t, gap)][:-1], axis=1)


def write_rows(rows: Sequence[np.ndarray], path: Path | str) -> Path:
    """Stacks rows of different widths (padded white) into one PNG."""
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    write_image(path, np.concatenate(padded, axis=0))
    return Path(path)


def contact_sheet(samples: Sequence[Sample], path: Path | str, height: int = 160) -> Path:
    """Writes a PNG with one row per sample; returns its path."""
    return write_rows([sample_row(s, height) for s in samples], path)
