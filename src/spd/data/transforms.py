"""Joint augmentation of image, parsing mask, keypoints and DensePose maps with
``torchvision.transforms.v2``. Each target is a tv_tensor whose type says how it moves:

- image:     ``tv_tensors.Image``  (bilinear, fill 0)
- parsing:   :class:`ParsingMask`  (nearest, fill 255 = ignore; flip swaps left/right classes)
- keypoints: ``tv_tensors.KeyPoints`` [K, 2] (flip swaps left/right joints; nan = missing)
- dp_index:  :class:`PartIndexMask` (nearest, fill 255; flip permutes DensePose parts)
- dp_uv:     :class:`UVMap` [3, H, W] = U, V and a validity channel (bilinear, fill 0). A flip
             zeroes the validity, because the U, V symmetry table of DensePose is not available
             offline and flipped U, V must not be trained on. (Validity is a channel rather than
             nan because nan does not survive resampling.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF
from torchvision.transforms.v2._utils import query_size

from ..labels import IGNORE_INDEX, keypoint_space, label_space
from .geometry import affine_matrix, transform_points, transformed_extent, warp


class ParsingMask(tv_tensors.Mask):
    """Parsing class ids [H, W]."""


class PartIndexMask(tv_tensors.Mask):
    """DensePose part index I [H, W]."""


class UVMap(tv_tensors.Image):
    """DensePose U, V in [0, 1] and their validity (1 = may be trained on), [3, H, W]."""


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation. Defaults follow JPPNet (scale 0.75-1.25 without keeping the aspect
    ratio, mirror, pad and random crop); rotation is off unless asked for."""

    size: tuple[int, int] = (384, 384)       # output height, width
    scale: tuple[float, float] = (0.75, 1.25)
    keep_aspect: bool = False
    rotation: float = 0.0                    # maximum |angle| in degrees
    flip: float = 0.5                        # probability of a mirror
    fit: bool = False                        # first scale the image so its longer side fits ``size``
    random_crop: bool = True                 # False: the crop is centred


class RandomAffineCrop(v2.Transform):
    """Random scale (per axis unless ``keep_aspect``), rotation and crop / pad to ``size``, applied
    as one affine warp so that every target is resampled once and stays aligned."""

    def __init__(self, config: AugmentConfig):
        super().__init__()
        self.config = config

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        cfg = self.config
        in_hw = query_size(flat_inputs)
        base = min(cfg.size[0] / in_hw[0], cfg.size[1] / in_hw[1]) if cfg.fit else 1.0
        sx = float(torch.empty(1).uniform_(*cfg.scale))
        sy = sx if cfg.keep_aspect else float(torch.empty(1).uniform_(*cfg.scale))
        angle = float(torch.empty(1).uniform_(-cfg.rotation, cfg.rotation)) if cfg.rotation > 0 else 0.0
        matrix = affine_matrix(in_hw, cfg.size, (sx * base, sy * base), angle)
        shift = [0.0, 0.0]
        if cfg.random_crop:
            # Crop inside the transformed image when it is larger than the output, place it
            # anywhere inside the output when it is smaller (JPPNet: pad, then random crop).
            for axis, extent in enumerate(transformed_extent(in_hw, matrix)):
                slack = abs(extent - cfg.size[1 - axis]) / 2.0
                shift[axis] = float(torch.empty(1).uniform_(-slack, slack))
            matrix = affine_matrix(in_hw, cfg.size, (sx * base, sy * base), angle, tuple(shift))
        return {"matrix": matrix}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        size, matrix = self.config.size, params["matrix"]
        if isinstance(inpt, tv_tensors.KeyPoints):
            return tv_tensors.wrap(transform_points(inpt.as_subclass(torch.Tensor), matrix), like=inpt,
                                   canvas_size=size)
        if isinstance(inpt, tv_tensors.Mask):
            return tv_tensors.wrap(warp(inpt.as_subclass(torch.Tensor), matrix, size, "nearest", IGNORE_INDEX), like=inpt)
        if isinstance(inpt, tv_tensors.Image):
            return tv_tensors.wrap(warp(inpt.as_subclass(torch.Tensor), matrix, size, "bilinear", 0.0), like=inpt)
        return inpt


class RandomHorizontalFlipSwap(v2.Transform):
    """Mirror with the left/right swaps of the label spaces (labels/*.yaml)."""

    def __init__(self, p: float = 0.5, parsing_space: str = "lip", keypoints: str = "lip16"):
        super().__init__()
        self.p = p
        self.parsing_lut = torch.from_numpy(label_space(parsing_space).flip_lut())
        self.part_lut = torch.from_numpy(label_space("densepose").flip_lut())
        self.joint_perm = torch.tensor(keypoint_space(keypoints).flip_permutation)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"flip": bool(torch.rand(1) < self.p)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not params["flip"] or not isinstance(inpt, torch.Tensor):
            return inpt
        return flip_target(inpt, self.parsing_lut, self.part_lut, self.joint_perm)


def flip_target(inpt: torch.Tensor, parsing_lut: torch.Tensor, part_lut: torch.Tensor,
                joint_perm: torch.Tensor) -> torch.Tensor:
    """Mirrors one target and applies its left/right swap (see the module docstring)."""
    out = TF.horizontal_flip(inpt)
    if isinstance(inpt, UVMap):
        invalid = out.as_subclass(torch.Tensor).clone()
        invalid[2] = 0.0
        return tv_tensors.wrap(invalid, like=inpt)
    lut = part_lut if isinstance(inpt, PartIndexMask) else parsing_lut if isinstance(inpt, ParsingMask) else None
    if lut is not None:
        return tv_tensors.wrap(lut[out.as_subclass(torch.Tensor).long()].to(inpt.dtype), like=inpt)
    if isinstance(inpt, tv_tensors.KeyPoints):
        return tv_tensors.wrap(out.as_subclass(torch.Tensor)[joint_perm], like=out)
    return out


def train_transform(config: AugmentConfig, parsing_space: str = "lip") -> v2.Compose:
    return v2.Compose([RandomHorizontalFlipSwap(config.flip, parsing_space), RandomAffineCrop(config)])
