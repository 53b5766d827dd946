"""Joint augmentation of image, parsing mask, keypoints and DensePose maps with
``torchvision.transforms.v2``. Each target is a tv_tensor whose type says how it moves:

- image:     ``tv_tensors.Image``  (bilinear, fill 0)
- parsing:   :class:`ParsingMask`  (nearest, fill 255 = ignore; flip swaps left/right classes)
- keypoints: ``tv_tensors.KeyPoints`` [K, 2] (flip swaps left/right joints; nan = missing)
- dp_index:  :class:`PartIndexMask` (nearest, fill 255; flip permutes DensePose parts)
- heatmaps:  :class:`HeatmapStack` [K, H, W] uint8, JPPNet's dense pose targets (only with the
             ``jppnet`` recipe; nearest, fill 0; flip swaps left/right joints)
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
from ..ops.tf import legacy_bilinear_resize, legacy_nearest_resize
from ..ops.validation import require, require_choice
from .geometry import affine_matrix, transform_points, transformed_extent, warp


class ParsingMask(tv_tensors.Mask):
    """Parsing class ids [H, W]."""


class PartIndexMask(tv_tensors.Mask):
    """DensePose part index I [H, W]."""


class UVMap(tv_tensors.Image):
    """DensePose U, V in [0, 1] and their validity (1 = may be trained on), [3, H, W]."""


class HeatmapStack(tv_tensors.Mask):
    """One heatmap per joint, [K, H, W] uint8 (255 = peak), made at the original image size."""


RECIPES = ("affine", "jppnet")
# The colour that is zero after the default (ImageNet) normalisation: JPPNet pads with its mean.
MEAN_COLOUR = (0.485 * 255, 0.456 * 255, 0.406 * 255)


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation, one of two recipes:

    * ``affine``: random scale (per axis), rotation and a random crop / pad as one
      affine warp around the image centre; pose targets rendered after it at the output grid.
    * ``jppnet``: JPPNet's own (utils/lip_reader.py): mirror; ONE factor s in ``scale`` and a
      resize of everything to int(size * s) whatever the image's aspect (TF1's legacy resizes);
      padding on the right and bottom to ``size`` (image: the mean colour, labels 255, heatmaps 0);
      a random crop. Pose targets are JPPNet's dense heatmaps made at the original size, resized
      with the image. ``rotation`` and ``fit`` do not apply.
    """

    RETIRED = {"keep_aspect": "the affine recipe scales each axis on its own (no config kept the aspect)",
               "random_crop": "crops are random (no config centred them)"}

    size: tuple[int, int] = (384, 384)       # output height, width
    scale: tuple[float, float] = (0.75, 1.25)
    rotation: float = 0.0                    # maximum |angle| in degrees
    flip: float = 0.5                        # probability of a mirror
    fit: bool = False                        # first scale the image so its longer side fits ``size``
    recipe: str = "affine"                   # "affine" or "jppnet" (see above)

    def __post_init__(self) -> None:
        require_choice("augment.recipe", self.recipe, RECIPES)
        require("augment", [("size", list(self.size), len(self.size) == 2 and min(self.size) >= 8, "[H, W], each >= 8"),
                            ("scale", list(self.scale), len(self.scale) == 2 and 0 < self.scale[0] <= self.scale[1],
                             "[low, high] with 0 < low <= high"),
                            ("rotation", self.rotation, 0 <= self.rotation <= 180, "in [0, 180] degrees"),
                            ("flip", self.flip, 0 <= self.flip <= 1, "a probability in [0, 1]")])


class RandomAffineCrop(v2.Transform):
    """Random scale (per axis), rotation and crop / pad to ``size``, applied
    as one affine warp so that every target is resampled once and stays aligned."""

    def __init__(self, config: AugmentConfig):
        super().__init__()
        self.config = config

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        cfg = self.config
        in_hw = query_size(flat_inputs)
        base = min(cfg.size[0] / in_hw[0], cfg.size[1] / in_hw[1]) if cfg.fit else 1.0
        sx = float(torch.empty(1).uniform_(*cfg.scale))
        sy = float(torch.empty(1).uniform_(*cfg.scale))
        angle = float(torch.empty(1).uniform_(-cfg.rotation, cfg.rotation)) if cfg.rotation > 0 else 0.0
        matrix = affine_matrix(in_hw, cfg.size, (sx * base, sy * base), angle)
        shift = [0.0, 0.0]
        # Crop inside the transformed image when it is larger than the output, place it anywhere
        # inside the output when it is smaller (JPPNet: pad, then random crop).
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
            fill = 0 if isinstance(inpt, HeatmapStack) else IGNORE_INDEX
            return tv_tensors.wrap(warp(inpt.as_subclass(torch.Tensor), matrix, size, "nearest", fill), like=inpt)
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
    if isinstance(inpt, (tv_tensors.KeyPoints, HeatmapStack)):
        return tv_tensors.wrap(out.as_subclass(torch.Tensor)[joint_perm], like=out)
    return out


class JPPNetScaleCrop(v2.Transform):
    """JPPNet's random scale, pad and crop (see :class:`AugmentConfig`, recipe ``jppnet``).

    The image is resized by TF1's legacy bilinear and rounded back to 8 bits (the official
    pipeline keeps floats: at most half a grey level apart); labels, part indices, heatmaps and
    U, V by TF1's legacy nearest neighbour (the top-left source pixel).
    """

    def __init__(self, config: AugmentConfig, fill: tuple[float, float, float] = MEAN_COLOUR):
        super().__init__()
        self.config, self.fill = config, fill

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        s = float(torch.empty(1).uniform_(*self.config.scale))
        resized = tuple(int(n * s) for n in self.config.size)  # a square for JPPNet's 384 x 384
        offset = tuple(int(torch.randint(0, max(r, n) - n + 1, ())) for r, n in zip(resized, self.config.size))
        return {"resized": resized, "offset": offset, "in_hw": query_size(flat_inputs)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        resized, (top, left), (h, w) = params["resized"], params["offset"], params["in_hw"]
        if isinstance(inpt, tv_tensors.KeyPoints):
            xy = inpt.as_subclass(torch.Tensor) * torch.tensor([resized[1] / w, resized[0] / h]) - torch.tensor([left, top])
            return tv_tensors.wrap(xy, like=inpt, canvas_size=self.config.size)
        if not isinstance(inpt, tv_tensors.Image | tv_tensors.Mask):
            return inpt
        x = inpt.as_subclass(torch.Tensor)
        squeeze = x.ndim == 2
        x = x[None, None] if squeeze else x[None]
        if isinstance(inpt, tv_tensors.Mask):
            fill = 0 if isinstance(inpt, HeatmapStack) else IGNORE_INDEX
            x = legacy_nearest_resize(x, resized)
            fills = [fill] * x.shape[1]
        else:
            x = legacy_bilinear_resize(x.float(), resized)
            fills = list(self.fill) if not isinstance(inpt, UVMap) else [0.0] * x.shape[1]
            if x.dtype != inpt.dtype:
                x = x.round().clamp(0, 255).to(inpt.dtype) if inpt.dtype == torch.uint8 else x.to(inpt.dtype)
        out = _pad_crop(x[0], fills, top, left, self.config.size)
        return tv_tensors.wrap(out[0] if squeeze else out, like=inpt)


def _pad_crop(x: torch.Tensor, fills: list[float], top: int, left: int, size: tuple[int, int]) -> torch.Tensor:
    """[C, h, w] padded on the right and bottom with ``fills`` (per channel) to at least ``size``,
    then cropped at (top, left) to ``size``."""
    c, h, w = x.shape
    values = torch.tensor(fills, dtype=torch.float64)
    values = values if x.dtype.is_floating_point else values.round()
    canvas = values.to(x.dtype).view(c, 1, 1).expand(c, max(h, size[0]), max(w, size[1])).clone()
    canvas[:, :h, :w] = x
    return canvas[:, top:top + size[0], left:left + size[1]]


def train_transform(config: AugmentConfig, parsing_space: str = "lip") -> v2.Compose:
    crop = JPPNetScaleCrop(config) if config.recipe == "jppnet" else RandomAffineCrop(config)
    return v2.Compose([RandomHorizontalFlipSwap(config.flip, parsing_space), crop])
