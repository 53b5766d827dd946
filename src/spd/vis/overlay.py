"""What a user looks at: the parsing blended over the image, the confident joints' skeleton, the
DensePose colouring; side by side over a legend of the classes (:func:`overlay`) or one by one
(:func:`panels`, for the web page)."""

from __future__ import annotations

import numpy as np

from ..labels import keypoint_space, label_space
from .draw import colorize, draw_skeleton, iuv_to_rgb
from .legend import legend


def _blend(image: np.ndarray, colour: np.ndarray, where: np.ndarray, alpha: float) -> np.ndarray:
    out = np.where(where[..., None], (1 - alpha) * image.astype(np.float32) + alpha * colour, image)
    return out.round().astype(np.uint8)


def parsing_panel(image: np.ndarray, prediction, space: str, alpha: float = 0.55) -> np.ndarray:
    labels = prediction.parsing.cpu().numpy()
    return _blend(image, colorize(labels, label_space(space)).astype(np.float32), labels > 0, alpha)


def skeleton_panel(image: np.ndarray, prediction, min_score: float = 0.2) -> np.ndarray:
    """Joints whose score is below ``min_score`` are not drawn (nor their edges)."""
    kp = prediction.keypoints.cpu().numpy().astype(np.float64).copy()
    kp[prediction.keypoint_scores.cpu().numpy() < min_score] = np.nan
    scale = max(image.shape[:2])
    return draw_skeleton(image, kp, keypoint_space(), radius=max(3, scale // 150), line_width=max(2, scale // 300))


def densepose_panel(image: np.ndarray, prediction, alpha: float = 0.55) -> np.ndarray:
    index = prediction.dp_index.cpu().numpy()
    return _blend(image, iuv_to_rgb(index, prediction.dp_uv.cpu().numpy()).astype(np.float32), index > 0, alpha)


def panels(image: np.ndarray, prediction, space: str, min_score: float = 0.2) -> dict[str, np.ndarray]:
    """``image`` uint8 [H, W, 3] -> {"parsing", "skeleton", "densepose"}: those the model predicts."""
    out = {}
    if prediction.parsing is not None:
        out["parsing"] = parsing_panel(image, prediction, space)
    if prediction.keypoints is not None:
        out["skeleton"] = skeleton_panel(image, prediction, min_score)
    if prediction.dp_index is not None:
        out["densepose"] = densepose_panel(image, prediction)
    return out


def overlay(image: np.ndarray, prediction, space: str, min_score: float = 0.2, all_classes: bool = False) -> np.ndarray:
    """One picture: parsing blend with the skeleton on it | DensePose colouring, over a legend of
    the classes present (every class with ``all_classes``, so that video frames keep one size)."""
    height, width = image.shape[:2]
    left = parsing_panel(image, prediction, space) if prediction.parsing is not None else image
    if prediction.keypoints is not None:
        left = skeleton_panel(left, prediction, min_score)
    row = [left]
    if prediction.dp_index is not None:
        row += [np.full((height, max(2, width // 100), 3), 255, np.uint8), densepose_panel(image, prediction)]
    row = np.concatenate(row, axis=1)
    if prediction.parsing is None:
        return row
    present = None if all_classes else set(np.unique(prediction.parsing.cpu().numpy()).tolist())
    key = legend(space, row.shape[1], swatch=max(14, max(height, width) // 40), only=present)
    return np.concatenate([row, key], axis=0)
