"""The overlay a user looks at: the parsing blended over the image with the confident joints'
skeleton, beside the DensePose colouring, over a legend of the classes."""

from __future__ import annotations

import numpy as np

from ..labels import keypoint_space, label_space
from .draw import colorize, draw_skeleton, iuv_to_rgb
from .legend import legend


def overlay(image: np.ndarray, prediction, space: str, min_score: float = 0.2, alpha: float = 0.55,
            all_classes: bool = False) -> np.ndarray:
    """``image`` uint8 [H, W, 3]; ``prediction`` a :class:`~spd.predict.Prediction` at that size.
    Joints whose score is below ``min_score`` are not drawn. The legend lists the classes present
    (every class with ``all_classes``, so that video frames keep one size)."""
    height, width = image.shape[:2]
    scale = max(height, width)
    panels, present = [], set()
    parsing = image.astype(np.float32)
    if prediction.parsing is not None:
        labels = prediction.parsing.cpu().numpy()
        colour = colorize(labels, label_space(space)).astype(np.float32)
        parsing = np.where((labels > 0)[..., None], (1 - alpha) * parsing + alpha * colour, parsing)
        present = set(np.unique(labels).tolist())
    parsing = parsing.round().astype(np.uint8)
    if prediction.keypoints is not None:
        kp = prediction.keypoints.cpu().numpy().astype(np.float64).copy()
        kp[prediction.keypoint_scores.cpu().numpy() < min_score] = np.nan
        parsing = draw_skeleton(parsing, kp, keypoint_space(), radius=max(3, scale // 150),
                                line_width=max(2, scale // 300))
    panels.append(parsing)
    if prediction.dp_index is not None:
        index = prediction.dp_index.cpu().numpy()
        dense = iuv_to_rgb(index, prediction.dp_uv.cpu().numpy()).astype(np.float32)
        blend = np.where((index > 0)[..., None], (1 - alpha) * image + alpha * dense, image.astype(np.float32))
        panels.append(blend.round().astype(np.uint8))
    gap = np.full((height, max(2, width // 100), 3), 255, np.uint8)
    row = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
    if prediction.parsing is None:
        return row
    key = legend(space, row.shape[1], swatch=max(14, scale // 40), only=None if all_classes else present)
    return np.concatenate([row, key], axis=0)
