"""Rasterised shapes for the synthetic renderer. Each returns a :class:`Patch`: a window of the
canvas, the shape's mask in it and chart coordinates (u along the shape's axis, v across it,
both in [0, 1]) so that the same geometry gives the parsing mask and the DensePose IUV map.
Coordinates are pixel centres (x = column, y = row)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Patch:
    y0: int
    x0: int
    mask: np.ndarray   # bool [h, w]
    u: np.ndarray      # float32 [h, w]
    v: np.ndarray      # float32 [h, w]

    @property
    def window(self) -> tuple[slice, slice]:
        h, w = self.mask.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)


def _grid(lo: np.ndarray, hi: np.ndarray, hw: tuple[int, int]) -> tuple[int, int, np.ndarray, np.ndarray] | None:
    """Integer window covering [lo, hi] clipped to the canvas, with its pixel coordinates."""
    x0, y0 = max(int(np.floor(lo[0])), 0), max(int(np.floor(lo[1])), 0)
    x1, y1 = min(int(np.ceil(hi[0])) + 1, hw[1]), min(int(np.ceil(hi[1])) + 1, hw[0])
    if x1 <= x0 or y1 <= y0:
        return None
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    return y0, x0, xs, ys


def capsule(a: np.ndarray, b: np.ndarray, ra: float, rb: float, hw: tuple[int, int]) -> Patch | None:
    """Tapered capsule from ``a`` (radius ``ra``) to ``b`` (radius ``rb``); u = 0 at a, 1 at b."""
    r = max(ra, rb)
    g = _grid(np.minimum(a, b) - r, np.maximum(a, b) + r, hw)
    if g is None:
        return None
    y0, x0, xs, ys = g
    d = b - a
    length2 = max(float(d @ d), 1e-6)
    t = np.clip(((xs - a[0]) * d[0] + (ys - a[1]) * d[1]) / length2, 0.0, 1.0)
    px, py = xs - (a[0] + t * d[0]), ys - (a[1] + t * d[1])
    radius = ra + (rb - ra) * t
    dist = np.sqrt(px * px + py * py)
    mask = dist <= radius
    if not mask.any():
        return None
    # Signed side of the axis (cross product) scaled by the local radius.
    side = (d[0] * py - d[1] * px) / np.sqrt(length2)
    v = np.clip(0.5 + 0.5 * side / np.maximum(radius, 1e-3), 0.0, 1.0)
    return Patch(y0, x0, mask, t.astype(np.float32), v.astype(np.float32))


def ellipse(center: np.ndarray, axis: np.ndarray, a: float, b: float, hw: tuple[int, int]) -> Patch | None:
    """Ellipse with semi-axis ``a`` along the unit vector ``axis`` and ``b`` across it."""
    r = max(a, b)
    g = _grid(center - r, center + r, hw)
    if g is None:
        return None
    y0, x0, xs, ys = g
    dx, dy = xs - center[0], ys - center[1]
    p = (dx * axis[0] + dy * axis[1]) / a
    q = (-dx * axis[1] + dy * axis[0]) / b
    mask = p * p + q * q <= 1.0
    if not mask.any():
        return None
    return Patch(y0, x0, mask, np.clip(0.5 + 0.5 * p, 0, 1).astype(np.float32),
                 np.clip(0.5 + 0.5 * q, 0, 1).astype(np.float32))


def polygon(points: np.ndarray, origin: np.ndarray, axis: np.ndarray, length: float, width: float,
            hw: tuple[int, int]) -> Patch | None:
    """Convex polygon (vertices in either winding); u runs along ``axis`` from ``origin`` over
    ``length``, v across it over ``width`` centred on the axis."""
    g = _grid(points.min(axis=0), points.max(axis=0), hw)
    if g is None:
        return None
    y0, x0, xs, ys = g
    edges = np.roll(points, -1, axis=0) - points
    cross = [(e[0] * (ys - p[1]) - e[1] * (xs - p[0])) for p, e in zip(points, edges)]
    stacked = np.stack(cross)
    mask = (stacked >= 0).all(axis=0) | (stacked <= 0).all(axis=0)
    if not mask.any():
        return None
    dx, dy = xs - origin[0], ys - origin[1]
    u = (dx * axis[0] + dy * axis[1]) / length
    v = 0.5 + (-dx * axis[1] + dy * axis[0]) / width
    return Patch(y0, x0, mask, np.clip(u, 0, 1).astype(np.float32), np.clip(v, 0, 1).astype(np.float32))


def clip_along(patch: Patch | None, lo: float, hi: float) -> Patch | None:
    """Keeps the part of ``patch`` with u in [lo, hi] (a sleeve, a sock, a trouser leg)."""
    if patch is None:
        return None
    mask = patch.mask & (patch.u >= lo) & (patch.u <= hi)
    return Patch(patch.y0, patch.x0, mask, patch.u, patch.v) if mask.any() else None
