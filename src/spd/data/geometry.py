"""Affine geometry shared by images, masks, keypoints and DensePose maps.

Convention (decided once, used everywhere): a pixel's centre has integer coordinates, x = column,
y = row; image content spans [-0.5, W - 0.5]. Resampling uses ``align_corners=False``, which is the
same convention, so a keypoint and the pixel under it move together exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _translation(tx: float, ty: float) -> torch.Tensor:
    return torch.tensor([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _centre(hw: tuple[int, int]) -> tuple[float, float]:
    return (hw[1] - 1) / 2.0, (hw[0] - 1) / 2.0


def affine_matrix(in_hw: tuple[int, int], out_hw: tuple[int, int], scale_xy: tuple[float, float],
                  angle_deg: float, shift_xy: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """float64 [3, 3] mapping input pixel coordinates to output pixel coordinates: scale about the
    input centre, rotate by ``angle_deg`` (counter-clockwise as seen), put the input centre at the
    output centre plus ``shift_xy``."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    # y points down, so this matrix turns the picture counter-clockwise as seen on screen.
    rotation = torch.tensor([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    scale = torch.diag(torch.tensor([scale_xy[0], scale_xy[1], 1.0], dtype=torch.float64))
    (cx, cy), (ox, oy) = _centre(in_hw), _centre(out_hw)
    return _translation(ox + shift_xy[0], oy + shift_xy[1]) @ rotation @ scale @ _translation(-cx, -cy)


def transformed_extent(in_hw: tuple[int, int], matrix: torch.Tensor) -> tuple[float, float]:
    """Width and height of the bounding box of the transformed image (pixel edges, not centres)."""
    h, w = in_hw
    corners = torch.tensor([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1]],
                           dtype=torch.float64)
    out = corners @ matrix.T
    extent = out[:, :2].amax(0) - out[:, :2].amin(0)
    return float(extent[0]), float(extent[1])


def transform_points(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """[..., 2] (x, y) -> [..., 2]; nan stays nan."""
    m = matrix.to(torch.float64)
    p = points.to(torch.float64)
    out = p @ m[:2, :2].T + m[:2, 2]
    return out.to(points.dtype)


def _normaliser(hw: tuple[int, int]) -> torch.Tensor:
    """Pixel coordinates -> grid_sample's [-1, 1] coordinates (align_corners=False)."""
    h, w = hw
    return torch.tensor([[2.0 / w, 0.0, 1.0 / w - 1.0], [0.0, 2.0 / h, 1.0 / h - 1.0], [0.0, 0.0, 1.0]],
                        dtype=torch.float64)


def warp(tensor: torch.Tensor, matrix: torch.Tensor, out_hw: tuple[int, int], mode: str, fill: float) -> torch.Tensor:
    """Resamples ``tensor`` ([H, W] or [C, H, W], any dtype) through ``matrix`` onto an
    ``out_hw`` canvas; pixels from outside the input get ``fill``. Nearest mode keeps integer
    labels exact; integer inputs come back rounded in their own dtype."""
    squeeze = tensor.ndim == 2
    x = tensor[None] if squeeze else tensor
    in_hw = (x.shape[-2], x.shape[-1])
    theta = (_normaliser(in_hw) @ torch.linalg.inv(matrix) @ torch.linalg.inv(_normaliser(out_hw)))[:2]
    grid = F.affine_grid(theta[None].float(), [1, x.shape[0], *out_hw], align_corners=False)
    if mode == "bilinear":
        # Zero padding, then the fill weighted by how much of each sample fell outside the input.
        ones = torch.ones((1, 1, *in_hw))
        cover = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        out = F.grid_sample(x.float()[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        out = out + fill * (1.0 - cover)
    else:
        # Sampling value + 1 with zero padding tells outside pixels (0) from real ones.
        out = F.grid_sample(x.float()[None] + 1.0, grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]
        out = torch.where(out == 0, torch.full_like(out, fill), out - 1.0)
    if not tensor.dtype.is_floating_point:
        info = torch.iinfo(tensor.dtype)
        out = out.round().clamp(info.min, info.max)
    out = out.to(tensor.dtype)
    return out[0] if squeeze else out
