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

from ..ops.argmax import channel_argmax
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
    ``search_from``: the output size (channels x pixels) from which :meth:`peak_indices` searches
    rather than letting every pixel be evaluated (below it, one band costs less than the search).
    """

    KERNELS = ("bilinear", "tf_bilinear", "tf_nearest", "affine")

    def __init__(self, maps: list[torch.Tensor], placements: list[Placement], factor: float = 1.0,
                 kernel: str = "bilinear", mirrored: list[bool] | None = None, search_from: int = BAND_ELEMENTS):
        if not maps or len(maps) != len(placements):
            raise ValueError("one placement per map is needed")
        require_choice("kernel", kernel, self.KERNELS)
        self.maps, self.placements, self.factor = maps, placements, factor
        self.kernel, self.mirrored = kernel, mirrored or [False] * len(maps)
        self.search_from = search_from
        if (kernel == "affine") != all(isinstance(p, AffinePlacement) for p in placements):
            raise ValueError("the affine kernel reads maps of affine placements, and only it")
        self._canvases: list[torch.Tensor] | None = None
        self.channels = maps[0].shape[0]
        self.height, self.width = placements[0].height, placements[0].width

    def _sample(self, rows: torch.Tensor, cols: torch.Tensor, pointwise: bool,
                channels: slice = slice(None)) -> torch.Tensor:
        """``pointwise``: rows and cols are N points -> [C, N]; else their grid -> [C, len(rows), len(cols)].
        ``channels``: only those (the bilinear kernel)."""
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
            v = F.grid_sample(m[None, channels].float(), grid, mode="bilinear", padding_mode="border",
                              align_corners=False)[0]
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

    # --- Exact shortcuts for one bilinear map --------------------------------------------------
    # A resized pixel is a convex combination of the four map cells around its sampling position
    # (weights >= 0, summing to 1). Where those four cells share their strict argmax, so does the
    # pixel; a channel's largest pixel lies next to the cells of its largest values. So labels are
    # computed at full size only near a change of label, and a peak only near high cells: the
    # results are those of evaluating every pixel, at a fraction of the cost on a large photo.

    def _positions(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """For each photo row and column, where its bilinear sampling reads the one map, in map
        pixels (border-clamped, as grid_sample's border padding): ([H], [W]); None where the
        shortcuts do not apply (several maps, another kernel, a factor <= 0, non-finite maps)."""
        if self.kernel != "bilinear" or len(self.maps) != 1 or not self.factor > 0:
            return None
        m, p = self.maps[0], self.placements[0]
        if not bool(torch.isfinite(m).all()):  # NaN compares as nothing: the full path says what it says
            return None
        device = m.device
        y, x = p.canvas_coords(torch.arange(self.height, device=device), torch.arange(self.width, device=device))
        h, w = m.shape[-2:]
        iy = ((2.0 * y / p.canvas[0] - 1.0 + 1) * h - 1) / 2
        ix = ((2.0 * x / p.canvas[1] - 1.0 + 1) * w - 1) / 2
        return iy.clamp(0, h - 1), ix.clamp(0, w - 1)

    def _cells(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """For each photo row and column, the map row / column of the cell pair its bilinear
        sampling starts at: ([H], [W]); None where the shortcuts do not apply."""
        positions = self._positions()
        return None if positions is None else (positions[0].floor().long(), positions[1].floor().long())

    def labels(self) -> torch.Tensor:
        """uint8 [H, W]: the channel of the largest value at each pixel, as ``rows(...).argmax(0)``."""
        cells = self._cells()
        out = torch.empty(self.height, self.width, dtype=torch.uint8, device=self.maps[0].device)
        if cells is None:
            for a, b in self.bands():
                out[a:b] = channel_argmax(self.rows(a, b)).to(torch.uint8)
            return out
        y0, x0 = cells
        m = self.maps[0].float()
        top = m.topk(min(2, m.shape[0]), dim=0).values
        label = channel_argmax(m)
        # A cell with a tie (or one channel) is never uniform: such pixels take the full path.
        strict = top[0] > top[1] if m.shape[0] > 1 else torch.zeros_like(label, dtype=torch.bool)
        padded = F.pad(label[None, None].float(), (0, 1, 0, 1), mode="replicate")[0, 0].long()
        sure = F.pad(strict[None, None].float(), (0, 1, 0, 1), mode="replicate")[0, 0] > 0
        corners = [(slice(None, -1), slice(None, -1)), (slice(None, -1), slice(1, None)),
                   (slice(1, None), slice(None, -1)), (slice(1, None), slice(1, None))]
        uniform = torch.ones_like(label, dtype=torch.bool)
        for cy, cx in corners:
            uniform &= (padded[cy, cx] == label) & sure[cy, cx]
        for a, b in self.bands(1):
            quad_uniform = uniform[y0[a:b]][:, x0]
            out[a:b] = label[y0[a:b]][:, x0].to(torch.uint8)
            rows, cols = torch.nonzero(~quad_uniform, as_tuple=True)
            for s in range(0, len(rows), BAND_ELEMENTS // max(1, self.channels)):
                r, c = rows[s:s + BAND_ELEMENTS // max(1, self.channels)], cols[s:s + BAND_ELEMENTS // max(1, self.channels)]
                out[a + r, c] = channel_argmax(self.at(a + r, c)).to(torch.uint8)
        return out

    def peak_indices(self, budget: int = 512) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per channel, the largest pixel's value and raster index (the first in raster order
        among equals): ([C], [C]); None where the shortcut does not apply, where the output is
        smaller than ``search_from``, or where a channel needs more than ``budget`` quads (a flat
        map): then every pixel is evaluated. Branch and
        bound over the map's cell quads: a quad's pixels are at most its largest corner."""
        cells = self._cells()
        if cells is None or self.channels * self.height * self.width < self.search_from:
            return None
        y0, x0 = cells
        m = self.maps[0].float()
        h, w = m.shape[-2:]
        padded = F.pad(m[None], (0, 1, 0, 1), mode="replicate")[0]
        bound = torch.stack([padded[:, :-1, :-1], padded[:, :-1, 1:], padded[:, 1:, :-1], padded[:, 1:, 1:]]).amax(0)
        bound = bound * self.factor
        # y0 and x0 never decrease: each cell's pixels are one run of rows and one of columns.
        cell_index = torch.arange(max(h, w) + 1, device=y0.device)
        row_start = torch.searchsorted(y0, cell_index[:h + 1]).tolist()
        col_start = torch.searchsorted(x0, cell_index[:w + 1]).tolist()
        best_values, best_index = [], []
        for k in range(m.shape[0]):
            order = torch.argsort(bound[k].flatten(), descending=True, stable=True).tolist()
            values = bound[k].flatten().tolist()
            best, index, visited = None, None, 0
            for q in order:
                if best is not None and values[q] < best:
                    break
                qy, qx = divmod(q, w)
                r0, r1, c0, c1 = row_start[qy], row_start[qy + 1], col_start[qx], col_start[qx + 1]
                if r0 == r1 or c0 == c1 or (best is not None and values[q] == best and r0 * self.width + c0 > index):
                    continue  # no pixel, or none that could come first among equals
                visited += 1
                if visited > budget:
                    return None
                cols = torch.arange(c0, c1, device=y0.device)
                step = max(1, BAND_ELEMENTS // max(1, len(cols)))
                for a in range(r0, r1, step):
                    rows = torch.arange(a, min(r1, a + step), device=y0.device)
                    block = self._sample(rows, cols, False, slice(k, k + 1))[0]
                    value = float(block.max())
                    where = torch.nonzero(block == value)
                    raster = int((rows[where[:, 0]] * self.width + cols[where[:, 1]]).min())
                    if best is None or value > best or (value == best and raster < index):
                        best, index = value, raster
            best_values.append(best)
            best_index.append(index)
        device = m.device
        return torch.tensor(best_values, device=device), torch.tensor(best_index, device=device)

    def select(self, index: torch.Tensor, groups: int) -> torch.Tensor:
        """[groups, H, W]: at each pixel, channel ``g * (C / groups) + index`` of group g (U and V
        of the predicted part, say), resized as ``rows`` resizes it, but only that channel."""
        per = self.channels // groups
        positions = self._positions()
        out = torch.empty(groups, self.height, self.width, device=self.maps[0].device)
        if positions is None:
            for a, b in self.bands():
                band = self.rows(a, b).reshape(groups, per, b - a, self.width)
                out[:, a:b] = band.gather(1, index[a:b][None, None].expand(groups, 1, -1, -1))[:, 0]
            return out
        m = self.maps[0].float()
        h, w = m.shape[-2:]
        iy, ix = positions
        y0, x0 = iy.floor().long(), ix.floor().long()
        wy, wx = iy - y0, ix - x0
        # The other corners' offsets from the top-left one: 0 where the map's edge clamps them.
        dy, dx = ((y0 + 1).clamp_max(h - 1) - y0) * w, (x0 + 1).clamp_max(w - 1) - x0
        groups_flat = m.reshape(groups, per * h * w)
        wx0, wx1 = (1 - wx)[None, :], wx[None, :]
        for a, b in self.bands(4 * groups):
            r = slice(a, b)
            top_left = index[r].long() * (h * w) + (y0[r] * w)[:, None] + x0[None, :]  # [rows, W], shared by the groups
            corners = (top_left, top_left + dx[None, :], top_left + dy[r][:, None], top_left + dy[r][:, None] + dx[None, :])
            wy0, wy1 = (1 - wy[r])[:, None], wy[r][:, None]
            for g in range(groups):
                v00, v01, v10, v11 = (groups_flat[g][c] for c in corners)
                out[g, a:b] = (wy0 * (wx0 * v00 + wx1 * v01) + wy1 * (wx0 * v10 + wx1 * v11)) * self.factor
        return out
