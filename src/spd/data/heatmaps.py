"""Keypoint <-> Gaussian heatmap codec, computed on the fly at the network's output grid; encode for
training targets, decode (:func:`find_peaks`) for predictions, on the grid or at a photo's size.

JPPNet draws one Gaussian per joint with sigma = 8 input pixels and peak 1, then resizes it to the
output grid (stride 8). Here the Gaussian is sampled directly at the output cells' centres, which
is the same function without the resize. Output cell j covers input pixels [j*s, (j+1)*s), so its
centre is at input coordinate (j + 0.5) * s - 0.5 (the align_corners=False convention of
geometry.py). A missing joint (nan) or one outside the input gets an all-zero map and weight 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

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

    def decode(self, heatmaps: "torch.Tensor | MapSource", refine: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps on this codec's grid -> (keypoints in input pixels, scores): a tensor [..., K, h, w]
        gives [..., K, 2] and [..., K]; a :class:`MapSource` (maps evaluated lazily, e.g. resized to
        a photo's size band by band, with ``stride=1``) gives [K, 2] and [K].

        The peak of each map (:func:`find_peaks`), refined to sub-cell by a parabola through the logs
        of its neighbours (exact for a Gaussian, so decode(encode(p)) == p away from the border)."""
        if not isinstance(heatmaps, torch.Tensor):
            xy, scores = find_peaks(heatmaps, refine)
            return self.to_input(xy), scores
        lead, (k, h, w) = heatmaps.shape[:-3], heatmaps.shape[-3:]
        flat = heatmaps.reshape(-1, k, h, w)
        peaks = [find_peaks(GridMaps(m), refine) for m in flat]
        xy = torch.stack([p[0] for p in peaks]) if peaks else heatmaps.new_zeros(0, k, 2)
        scores = torch.stack([p[1] for p in peaks]) if peaks else heatmaps.new_zeros(0, k)
        return self.to_input(xy).reshape(*lead, k, 2), scores.reshape(*lead, k)

    def to_input(self, xy: torch.Tensor) -> torch.Tensor:
        """Grid coordinates -> input pixels: cell centres, as align_corners=False."""
        return (xy + 0.5) * self.stride - 0.5 if self.stride != 1 else xy


class MapSource(Protocol):
    """Maps [C, H, W] that may be evaluated lazily (e.g. resized to a photo's size band by band)."""

    channels: int
    height: int
    width: int

    def bands(self) -> Iterator[tuple[int, int]]: ...
    def rows(self, start: int, stop: int) -> torch.Tensor: ...          # [C, stop - start, W]
    def at(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor: ...  # [C, N]


class GridMaps:
    """A plain tensor [C, H, W] as a :class:`MapSource`."""

    def __init__(self, maps: torch.Tensor):
        self.maps = maps
        self.channels, self.height, self.width = maps.shape

    def bands(self) -> Iterator[tuple[int, int]]:
        yield 0, self.height

    def rows(self, start: int, stop: int) -> torch.Tensor:
        return self.maps[:, start:stop]

    def at(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return self.maps[:, rows, cols]


def find_peaks(maps: MapSource, refine: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(peaks [C, 2] as (x, y) in the maps' pixels, values [C]) without holding the maps whole: the
    first maximum in raster order (as numpy's argmax in JPPNet's evaluation), with ``refine`` moved
    to sub-pixel by :func:`parabola_offset` along each axis."""
    k, width = maps.channels, maps.width
    best, index = None, None
    fast = getattr(maps, "peak_indices", None)
    found = fast() if fast is not None else None  # the same peaks without every pixel (ResizedSum)
    if found is not None:
        best, index = found
    for a, b in (maps.bands() if found is None else ()):
        band = maps.rows(a, b).flatten(1)
        where = band.argmax(1)
        value = band.gather(1, where[:, None])[:, 0]
        if best is None:
            best, index = value, where + a * width
        else:
            better = value > best  # strict: the first maximum in raster order wins, as a full argmax
            best, index = torch.where(better, value, best), torch.where(better, where + a * width, index)
    iy, ix = index // width, index % width
    xy = torch.stack([ix, iy], -1).float()
    if refine:
        joints = torch.arange(k, device=xy.device)

        def value(rows, cols):
            return maps.at(rows.clamp(0, maps.height - 1), cols.clamp(0, width - 1))[joints, joints]

        for axis, (dy, dx), centre, size in ((0, (0, 1), ix, width), (1, (1, 0), iy, maps.height)):
            lo, hi = value(iy - dy, ix - dx), value(iy + dy, ix + dx)
            xy[:, axis] += parabola_offset(lo, best, hi, (centre > 0) & (centre < size - 1))
    return xy, best


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
