"""Network outputs resized to the original image lazily: in row bands, or at single points.

A 6000 x 4000 photo would need 20 x 24M floats (1.9 GB) for the parsing logits alone at full size;
evaluating bilinear resizing band by band (``grid_sample`` with the exact sampling positions of
``F.interpolate(..., mode="bilinear", align_corners=False)``) keeps memory bounded and gives the
same values.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ..ops.validation import require_choice
from .placement import AffinePlacement, Placement, pixel_grid

BAND_ELEMENTS = 1 << 23  # floats per band and map (32 MB)


class ResizedSum:
    """The sum of ``maps[i]`` ([C, h_i, w_i], each covering the canvas of ``placements[i]``), resized
    to the original image and multiplied by ``factor``. ``rows`` and ``at`` evaluate it.

    ``kernel``: ``bilinear`` (half-pixel centres, as ``F.interpolate``), TF1's legacy
    ``tf_bilinear`` / ``tf_nearest`` (JPPNet's evaluation), for which ``mirrored[i]`` marks the
    maps of mirror views (see :meth:`Placement.legacy_taps`), or ``affine`` (SCHP's: each map
    upsampled to its canvas with ``align_corners=True``, then read bilinearly at each pixel's
    canvas position, zero outside the canvas; :class:`~.placement.AffinePlacement`).
    """

    KERNELS = ("bilinear", "tf_bilinear", "tf_nearest", "affine")

    def __init__(self, maps: list[torch.Tensor], placements: list[Placement], factor: float = 1.0,
                 kernel: str = "bilinear", mirrored: list[bool] | None = None):
        if not maps or len(maps) != len(placements):
            raise ValueError("one placement per map is needed")
        require_choice("kernel", kernel, self.KERNELS)
        self.maps, self.placements, self.factor = maps, placements, factor
        self.kernel, self.mirrored = kernel, mirrored or [False] * len(maps)
        if (kernel == "affine") != all(isinstance(p, AffinePlacement) for p in placements):
            raise ValueError("the affine kernel reads maps of affine placements, and only it")
        self._canvases: list[torch.Tensor] | None = None
        self.channels = maps[0].shape[0]
        self.height, self.width = placements[0].height, placements[0].width

    def _sample(self, rows: torch.Tensor, cols: torch.Tensor, pointwise: bool) -> torch.Tensor:
        """``pointwise``: rows and cols are N points -> [C, N]; else their grid -> [C, len(rows), len(cols)]."""
        if self.kernel == "affine":
            return self._sample_affine(rows, cols, pointwise)
        if self.kernel != "bilinear":
            return self._sample_legacy(rows, cols, pointwise)
        total = None
        for m, p in zip(self.maps, self.placements):
            y, x = p.canvas_coords(rows.to(m.device), cols.to(m.device))
            # The map covers the canvas, so a canvas coordinate is grid_sample's [-1, 1] coordinate
            # (align_corners=False) after scaling; border padding clamps as F.interpolate does.
            gy, gx = 2.0 * y / p.canvas[0] - 1.0, 2.0 * x / p.canvas[1] - 1.0
            if pointwise:
                grid = torch.stack([gx, gy], -1)[None, None]  # [1, 1, N, 2]
            else:
                grid = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), -1)[None]  # [1, R, W, 2]
            v = F.grid_sample(m[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
            total = v if total is None else total + v
        total = total * self.factor
        return total[:, 0] if pointwise else total

    def _sample_affine(self, rows: torch.Tensor, cols: torch.Tensor, pointwise: bool) -> torch.Tensor:
        if self._canvases is None:  # once: [C, *canvas] each (20 x 473 x 473 floats: 18 MB)
            self._canvases = [F.interpolate(m[None].float(), size=p.canvas, mode="bilinear", align_corners=True)[0]
                              for m, p in zip(self.maps, self.placements)]
        total = None
        for m, p in zip(self._canvases, self.placements):
            y, x = p.canvas_coords(rows.to(m.device), cols.to(m.device))
            grid = pixel_grid(y, x, p.canvas, pointwise)
            v = F.grid_sample(m[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
            total = v if total is None else total + v
        total = total * self.factor
        return total[:, 0] if pointwise else total

    def _sample_legacy(self, rows: torch.Tensor, cols: torch.Tensor, pointwise: bool) -> torch.Tensor:
        total = None
        for m, p, mirrored in zip(self.maps, self.placements, self.mirrored):
            (y0, y1, wy), (x0, x1, wx) = p.legacy_taps(rows.to(m.device), cols.to(m.device), tuple(m.shape[-2:]), mirrored)
            m = m.float()
            if self.kernel == "tf_nearest":
                v = m[:, y0, x0] if pointwise else m[:, y0][:, :, x0]
            elif pointwise:
                top = m[:, y0, x0] + (m[:, y0, x1] - m[:, y0, x0]) * wx
                v = top + (m[:, y1, x0] + (m[:, y1, x1] - m[:, y1, x0]) * wx - top) * wy
            else:
                band = m[:, y0] + (m[:, y1] - m[:, y0]) * wy[:, None]
                v = band[:, :, x0] + (band[:, :, x1] - band[:, :, x0]) * wx
            total = v if total is None else total + v
        return total * self.factor

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """[C, stop - start, W]"""
        device = self.maps[0].device
        return self._sample(torch.arange(start, stop, device=device), torch.arange(self.width, device=device), False)

    def at(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Values at integer pixels (rows[n], cols[n]): [C, N]."""
        return self._sample(rows, cols, True)

    def bands(self, channels: int | None = None) -> Iterator[tuple[int, int]]:
        step = max(1, BAND_ELEMENTS // max(1, (channels or self.channels) * self.width))
        for start in range(0, self.height, step):
            yield start, min(self.height, start + step)

    def full(self) -> torch.Tensor:
        """[C, H, W] in one piece (for callers that asked for it, such as class probabilities)."""
        return torch.cat([self.rows(a, b) for a, b in self.bands()], dim=1)
