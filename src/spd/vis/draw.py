"""Small drawing functions on uint8 [H, W, 3] arrays; colours come from the label spaces."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ..labels import KeypointSpace, LabelSpace, label_space


def colorize(labels: np.ndarray, space: LabelSpace) -> np.ndarray:
    """uint8 [H, W] class ids -> uint8 [H, W, 3] with the space's palette (255 = ignore is white)."""
    return space.palette_array()[np.asarray(labels, dtype=np.uint8)]


def iuv_to_rgb(index: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Part index in the DensePose palette, shaded by U so that the chart's direction is visible."""
    rgb = colorize(index, label_space("densepose")).astype(np.float32)
    shade = 0.55 + 0.45 * np.asarray(uv[0], np.float32)
    rgb = np.where((np.asarray(index) > 0)[..., None], rgb * shade[..., None], rgb)
    return rgb.clip(0, 255).astype(np.uint8)


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, space: KeypointSpace, radius: int = 3,
                  line_width: int = 2) -> np.ndarray:
    """Draws joints ([K, 2] or [K, 3] with v; nan = missing) and skeleton edges on a copy of ``image``.
    The person's left side is drawn in blue tones, the right in red, occluded joints hollow."""
    im = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(im)
    kp = np.asarray(keypoints, dtype=np.float64)
    ok = np.isfinite(kp[:, :2]).all(axis=1)

    def colour(j: int) -> tuple[int, int, int]:
        name = space.joints[j]
        return (60, 120, 255) if name.startswith("L_") else (255, 60, 60) if name.startswith("R_") else (255, 230, 40)

    for a, b in space.skeleton:
        if ok[a] and ok[b]:
            draw.line([tuple(kp[a, :2]), tuple(kp[b, :2])], fill=colour(b), width=line_width)
    for j in np.nonzero(ok)[0]:
        x, y = kp[j, :2]
        hollow = kp.shape[1] > 2 and kp[j, 2] == 0
        box = [x - radius, y - radius, x + radius, y + radius]
        draw.ellipse(box, outline=colour(j), fill=None if hollow else colour(j), width=line_width)
    return np.asarray(im)
