"""Where an image lies in the network's input canvas, and how it gets there.

``squash`` resizes the image to the canvas (JPPNet's test protocol: the aspect ratio changes);
``letterbox`` keeps the aspect ratio (to a pixel) and centres the image with equal margins, padded with the
mean colour (zero after normalisation): the canvas stays mirror-symmetric, so flip test-time
augmentation stays exact. ``affine`` is SCHP's crop (:class:`AffinePlacement`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..ops.errors import InputError
from ..ops.tf import legacy_bilinear_resize, legacy_source


@dataclass(frozen=True)
class Placement:
    """An image of ``height`` x ``width`` pixels occupies rows ``top .. top + inner[0]`` and columns
    ``left .. left + inner[1]`` of a canvas of ``canvas`` = (height, width) pixels."""

    height: int
    width: int
    canvas: tuple[int, int]
    top: int
    left: int
    inner: tuple[int, int]

    def canvas_coords(self, rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Original pixel indices -> continuous canvas coordinates (pixel centres at +0.5)."""
        y = self.top + (rows.float() + 0.5) * (self.inner[0] / self.height)
        x = self.left + (cols.float() + 0.5) * (self.inner[1] / self.width)
        return y, x

    def legacy_taps(self, rows: torch.Tensor, cols: torch.Tensor, size: tuple[int, int], mirrored: bool = False
                    ) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Where TF1's legacy resizes (JPPNet's evaluation) read a map of ``size`` covering the
        canvas for original pixels ``rows`` and ``cols``: per axis (low cell, high cell, weight of
        the high cell), pixel ``i`` sampling map coordinate ``i * map / image`` (no half-pixel
        centres). The nearest neighbour is the low cell. ``mirrored``: the map is the mirror view's,
        already flipped back at map resolution, as JPPNet resizes the mirror's output first and
        flips it at full size."""
        ys = _legacy_axis(rows, self.height, size[0], self.top, self.inner[0], self.canvas[0])
        if not mirrored:
            return ys, _legacy_axis(cols, self.width, size[1], self.left, self.inner[1], self.canvas[1])
        lo, hi, frac = _legacy_axis(self.width - 1 - cols, self.width, size[1], self.left, self.inner[1], self.canvas[1])
        return ys, (size[1] - 1 - lo, size[1] - 1 - hi, frac)


def _legacy_axis(index: torch.Tensor, n_image: int, n_map: int, offset: int, inner: int, canvas: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if offset == 0 and inner == canvas:  # the map covers the image: TensorFlow's float32 arithmetic, exactly
        coord = legacy_source(index, n_map, n_image)
    else:
        coord = ((offset + index.double() * (inner / n_image)) * (n_map / canvas)).float()
    lo = coord.floor().long().clamp(0, n_map - 1)
    return lo, (lo + 1).clamp_max(n_map - 1), (coord - lo.float()).clamp(0, 1)


@dataclass(frozen=True)
class AffinePlacement:
    """SCHP's test crop: the image scaled by ``factor`` about its centre onto the canvas's centre,
    in pixel-index coordinates (pixel centres at integers): image pixel ``x`` lies at canvas
    ``(x - (width - 1) / 2) * factor + (canvas_width - 1) / 2``, and likewise for rows. The factor
    fits the image's first-to-last-pixel extent, widened to the canvas's aspect ratio, to the
    canvas's (SCHP's box ``[0, 0, w - 1, h - 1]``, its ``_xywh2cs`` and ``get_affine_transform``).
    Mirror-symmetric, so a flipped canvas is the canvas of the flipped image."""

    height: int
    width: int
    canvas: tuple[int, int]
    factor: float

    def canvas_coords(self, rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Original pixel indices -> canvas pixel-index coordinates."""
        y = (rows.double() - (self.height - 1) / 2) * self.factor + (self.canvas[0] - 1) / 2
        x = (cols.double() - (self.width - 1) / 2) * self.factor + (self.canvas[1] - 1) / 2
        return y.float(), x.float()

    def image_coords(self, rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Canvas pixel indices -> image pixel-index coordinates (the inverse)."""
        y = (rows.double() - (self.canvas[0] - 1) / 2) / self.factor + (self.height - 1) / 2
        x = (cols.double() - (self.canvas[1] - 1) / 2) / self.factor + (self.width - 1) / 2
        return y.float(), x.float()


def affine_placement(height: int, width: int, canvas: tuple[int, int]) -> AffinePlacement:
    aspect = canvas[1] / canvas[0]
    box_w, box_h = width - 1, height - 1
    if box_w < aspect * box_h:
        box_w = box_h * aspect
    # A 1 x 1 image has no extent (SCHP divides by zero): any factor maps it to the centre.
    return AffinePlacement(height, width, canvas, (canvas[1] - 1) / (box_w if box_w > 0 else 1.0))


def pixel_grid(y: torch.Tensor, x: torch.Tensor, size: tuple[int, int], pointwise: bool = False) -> torch.Tensor:
    """Pixel-index coordinates in a map of ``size`` -> ``grid_sample``'s grid in its
    ``align_corners=False`` form (which also serves 1-pixel maps): the grid of ``y`` [R] and
    ``x`` [W] as [1, R, W, 2], or with ``pointwise`` the N points (y[n], x[n]) as [1, 1, N, 2]."""
    gy, gx = (2 * y + 1) / size[0] - 1, (2 * x + 1) / size[1] - 1
    if pointwise:
        return torch.stack([gx, gy], -1)[None, None]
    return torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), -1)[None]


def warp_to_canvas(image: torch.Tensor, placement: AffinePlacement) -> torch.Tensor:
    """uint8 [C, H, W] -> the canvas as uint8-valued float32 [C, *canvas]: bilinear at each canvas
    pixel's image position, black outside the image, rounded (SCHP's ``cv2.warpAffine``)."""
    rows = torch.arange(placement.canvas[0], device=image.device)
    cols = torch.arange(placement.canvas[1], device=image.device)
    y, x = placement.image_coords(rows, cols)
    grid = pixel_grid(y, x, (placement.height, placement.width))
    out = F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    return out.round().clamp(0, 255)


def place(height: int, width: int, canvas: tuple[int, int], policy: str) -> Placement | AffinePlacement:
    if policy == "affine":
        return affine_placement(height, width, canvas)
    if policy == "squash":
        return Placement(height, width, canvas, 0, 0, canvas)
    if policy != "letterbox":
        raise InputError(f"resize policy must be 'squash' or 'letterbox', got {policy!r}")
    k = min(canvas[0] / height, canvas[1] / width)
    # One pixel more where the padding would be odd: equal margins keep the canvas mirror-symmetric.
    inner = tuple(i + (c - i) % 2 for i, c in zip((max(1, min(canvas[0], round(height * k))),
                                                    max(1, min(canvas[1], round(width * k)))), canvas))
    return Placement(height, width, canvas, (canvas[0] - inner[0]) // 2, (canvas[1] - inner[1]) // 2, inner)


def to_canvas(image: torch.Tensor, placement: Placement | AffinePlacement, normalise, legacy: bool = False) -> torch.Tensor:
    """uint8 RGB [3, H, W] -> the network's input [3, *canvas]: normalised by ``normalise``
    ([B, 3, h, w] uint8 -> float), resized bilinearly (no antialias, as the evaluation protocol;
    ``legacy``: TF1's legacy bilinear, as JPPNet's), padded. An affine placement warps the pixels
    first and normalises the canvas (black around the image, as SCHP's)."""
    if isinstance(placement, AffinePlacement):
        return normalise(warp_to_canvas(image, placement)[None])[0]
    x = normalise(image[None])
    if tuple(x.shape[-2:]) != placement.inner:
        x = (legacy_bilinear_resize(x, placement.inner) if legacy
             else F.interpolate(x, size=placement.inner, mode="bilinear", align_corners=False))
    if placement.inner != placement.canvas:
        bottom = placement.canvas[0] - placement.inner[0] - placement.top
        right = placement.canvas[1] - placement.inner[1] - placement.left
        x = F.pad(x, (placement.left, right, placement.top, bottom))
    return x[0]
