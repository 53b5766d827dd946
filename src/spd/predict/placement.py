"""Where an image lies in the network's input canvas, and how it gets there.

``squash`` resizes the image to the canvas (JPPNet's test protocol: the aspect ratio changes);
``letterbox`` keeps the aspect ratio (to a pixel) and centres the image with equal margins, padded with the
mean colour (zero after normalisation): the canvas stays mirror-symmetric, so flip test-time
augmentation stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


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

    def nearest_cells(self, rows: torch.Tensor, cols: torch.Tensor, size: tuple[int, int],
                      mirrored: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Cells of a map of ``size`` covering the canvas that TF1's ``resize_nearest_neighbor``
        (JPPNet's evaluation) gives original pixels ``rows`` and ``cols``: the cell under each
        pixel's top-left corner. ``mirrored``: the map is the mirror view's, already flipped back at
        map resolution, as JPPNet resizes the mirror's output first and flips it at full size."""
        iy = _corner_cells(rows, self.height, size[0], self.top, self.inner[0], self.canvas[0])
        if mirrored:
            return iy, size[1] - 1 - _corner_cells(self.width - 1 - cols, self.width, size[1], self.left,
                                                   self.inner[1], self.canvas[1])
        return iy, _corner_cells(cols, self.width, size[1], self.left, self.inner[1], self.canvas[1])


def _corner_cells(index: torch.Tensor, n_image: int, n_map: int, offset: int, inner: int, canvas: int) -> torch.Tensor:
    if offset == 0 and inner == canvas:  # the map covers the image: TensorFlow's float32 arithmetic, exactly
        scale = torch.tensor(n_map / n_image, dtype=torch.float32, device=index.device)
        cells = (index.float() * scale).floor()
    else:
        cells = ((offset + index.double() * (inner / n_image)) * (n_map / canvas)).floor()
    return cells.long().clamp(0, n_map - 1)


def place(height: int, width: int, canvas: tuple[int, int], policy: str) -> Placement:
    if policy == "squash":
        return Placement(height, width, canvas, 0, 0, canvas)
    if policy != "letterbox":
        raise ValueError(f"resize policy must be 'squash' or 'letterbox', got {policy!r}")
    k = min(canvas[0] / height, canvas[1] / width)
    # One pixel more where the padding would be odd: equal margins keep the canvas mirror-symmetric.
    inner = tuple(i + (c - i) % 2 for i, c in zip((max(1, min(canvas[0], round(height * k))),
                                                    max(1, min(canvas[1], round(width * k)))), canvas))
    return Placement(height, width, canvas, (canvas[0] - inner[0]) // 2, (canvas[1] - inner[1]) // 2, inner)


def to_canvas(image: torch.Tensor, placement: Placement, normalise) -> torch.Tensor:
    """uint8 RGB [3, H, W] -> the network's input [3, *canvas]: resized bilinearly (no antialias,
    as the evaluation protocol), normalised by ``normalise`` ([B, 3, h, w] uint8 -> float), padded."""
    x = normalise(image[None])
    if tuple(x.shape[-2:]) != placement.inner:
        x = F.interpolate(x, size=placement.inner, mode="bilinear", align_corners=False)
    if placement.inner != placement.canvas:
        bottom = placement.canvas[0] - placement.inner[0] - placement.top
        right = placement.canvas[1] - placement.inner[1] - placement.left
        x = F.pad(x, (placement.left, right, placement.top, bottom))
    return x[0]
