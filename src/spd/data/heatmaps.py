"""Keypoint <-> Gaussian heatmap codec, computed on the fly at the network's output grid.

JPPNet draws one Gaussian per joint with sigma = 8 input pixels and peak 1, then resizes it to the
output grid (stride 8). Here the Gaussian is sampled directly at the output cells' centres, which
is the same function without the resize. Output cell j covers input pixels [j*s, (j+1)*s), so its
centre is at input coordinate (j + 0.5) * s - 0.5 (the align_corners=False convention of
geometry.py). A missing joint (nan) or one outside the input gets an all-zero map and weight 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# JPPNet's heatmap files (datasets/lip/create_heatmaps.py): a Gaussian of variance 64 px^2 in
# original image pixels, within a +-25 px window, saved as 8-bit images scaled to peak 255.
JPPNET_VARIANCE = 64.0
JPPNET_WINDOW = 25


@dataclass(frozen=True)
class HeatmapCodec:
    stride: int = 8
    sigma: float = 8.0  # in input pixels

    def grid_hw(self, input_hw: tuple[int, int]) -> tuple[int, int]:
        return -(-input_hw[0] // self.stride), -(-input_hw[1] // self.stride)

    def cell_centres(self, n: int) -> torch.Tensor:
        return (torch.arange(n, dtype=torch.float32) + 0.5) * self.stride - 0.5

    def encode(self, keypoints: torch.Tensor, input_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """keypoints [..., K, 2] (x, y) input pixels -> (heatmaps [..., K, h, w], weights [..., K])."""
        h, w = self.grid_hw(input_hw)
        x, y = keypoints[..., 0].float(), keypoints[..., 1].float()
        present = (torch.isfinite(x) & torch.isfinite(y) & (x >= -0.5) & (x < input_hw[1] - 0.5)
                   & (y >= -0.5) & (y < input_hw[0] - 0.5))
        x0, y0 = torch.where(present, x, 0.0), torch.where(present, y, 0.0)
        gx = torch.exp(-((self.cell_centres(w) - x0[..., None]) ** 2) / (2 * self.sigma ** 2))  # [..., K, w]
        gy = torch.exp(-((self.cell_centres(h) - y0[..., None]) ** 2) / (2 * self.sigma ** 2))  # [..., K, h]
        heatmaps = gy[..., :, None] * gx[..., None, :] * present[..., None, None]
        return heatmaps, present.float()

    def decode(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """heatmaps [..., K, h, w] -> (keypoints [..., K, 2] input pixels, scores [..., K]).

        The argmax is refined by fitting a parabola to the log of the peak and its two neighbours
        along each axis: exact for a Gaussian, so decode(encode(p)) == p away from the border.
        """
        h, w = heatmaps.shape[-2:]
        flat = heatmaps.reshape(*heatmaps.shape[:-2], h * w)
        scores, index = flat.max(dim=-1)
        iy, ix = torch.div(index, w, rounding_mode="floor"), index % w
        offsets = []
        for centre, size, step in ((ix, w, 1), (iy, h, w)):
            inner = (centre > 0) & (centre < size - 1)
            at = lambda delta: flat.gather(-1, (index + delta * step * inner)[..., None])[..., 0]  # noqa: E731
            offsets.append(parabola_offset(at(-1), at(0), at(1), inner))
        x = (ix.float() + offsets[0] + 0.5) * self.stride - 0.5
        y = (iy.float() + offsets[1] + 0.5) * self.stride - 0.5
        return torch.stack([x, y], dim=-1), scores


def parabola_offset(lo: torch.Tensor, mid: torch.Tensor, hi: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """Sub-pixel offset in [-0.5, 0.5] of a peak ``mid`` from its neighbours ``lo`` and ``hi``: the
    vertex of the parabola through their logs (0 at the border, ``inner`` False, or a flat peak)."""
    llo, lmid, lhi = (torch.log(v.clamp_min(1e-10)) for v in (lo, mid, hi))
    curvature = llo - 2 * lmid + lhi
    ok = inner & (curvature < -1e-6) & (lo > 1e-10) & (hi > 1e-10)
    delta = torch.where(ok, 0.5 * (llo - lhi) / torch.where(ok, curvature, -1.0), 0.0)
    return delta.clamp(-0.5, 0.5)


def jppnet_heatmaps(keypoints: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """JPPNet's training heatmaps at the original image size, as its preprocessing writes them:
    keypoints [K, 2] (x, y; nan = missing) -> uint8 [K, H, W].

    Coordinates are truncated to integers and clamped into the image; a missing joint (and, as in
    the official script, one at (0, 0)) gets an all-zero map. The Gaussian covers rows
    ``y - 25 .. min(y + 25, H - 1) - 1`` (the script's half-open ranges) and likewise columns, and is
    scaled so that its largest pixel is 255, rounded."""
    k = keypoints.shape[0]
    out = torch.zeros(k, height, width, dtype=torch.uint8)
    rows, cols = torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64)
    for j in range(k):
        x, y = (float(v) for v in keypoints[j, :2])
        if math.isnan(x) or math.isnan(y):
            continue
        c, r = min(max(int(x), 0), width - 1), min(max(int(y), 0), height - 1)
        if c + r == 0:
            continue
        r0, r1 = max(r - JPPNET_WINDOW, 0), min(r + JPPNET_WINDOW, height - 1)
        c0, c1 = max(c - JPPNET_WINDOW, 0), min(c + JPPNET_WINDOW, width - 1)
        if r1 <= r0 or c1 <= c0:
            continue
        d2 = (rows[r0:r1, None] - r) ** 2 + (cols[None, c0:c1] - c) ** 2
        g = torch.exp(-d2 / (2 * JPPNET_VARIANCE))
        out[j, r0:r1, c0:c1] = torch.floor(g / g.max() * 255 + 0.5).to(torch.uint8)
    return out
