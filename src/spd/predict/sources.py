"""What a Predictor accepts as an image: a path, a Pillow image, a numpy array or a tensor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..data.image_io import pil_to_tensor, read_image
from ..ops.errors import InputError


def _from_array(array: np.ndarray, what: str) -> torch.Tensor:
    """[H, W] gray or [H, W, 3 | 4] (RGB, alpha dropped); uint8, uint16 (scaled) or float in [0, 1]."""
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[..., :3] if array.shape[2] != 1 else array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise InputError(f"{what}: expected an image array [H, W], [H, W, 3] or [H, W, 4], got shape {array.shape}")
    if array.dtype == np.uint8:
        pass
    elif array.dtype == np.uint16:
        array = (array.astype(np.float64) * (255.0 / 65535.0)).round().astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min(initial=0) < 0 or array.max(initial=0) > 1:
            raise InputError(f"{what}: a float image must hold values in [0, 1]")
        array = (array * 255.0).round().astype(np.uint8)
    else:
        raise InputError(f"{what}: unsupported image dtype {array.dtype} (use uint8, uint16 or float in [0, 1])")
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()


def to_image_tensor(item: Any, index: int = 0) -> tuple[torch.Tensor, str | None]:
    """(uint8 RGB [3, H, W], a name for messages and outputs). Tensors are taken as [3, H, W] (or
    [1, H, W]) uint8, as torchvision's decoders return; arrays as [H, W, C], as Pillow and OpenCV
    (already converted to RGB) return them."""
    if isinstance(item, (str, Path)):
        return read_image(item), str(item)
    what = f"image {index}"
    if isinstance(item, Image.Image):
        return pil_to_tensor(item), getattr(item, "filename", None) or None
    if isinstance(item, torch.Tensor):
        if item.ndim != 3 or item.shape[0] not in (1, 3) or item.dtype != torch.uint8:
            raise InputError(f"{what}: expected a uint8 tensor [3, H, W] or [1, H, W], got {item.dtype} "
                             f"{list(item.shape)}")
        return (item.expand(3, -1, -1) if item.shape[0] == 1 else item).contiguous(), None
    if isinstance(item, np.ndarray):
        return _from_array(item, what), None
    raise TypeError(f"{what}: expected a path, PIL image, numpy array or uint8 tensor, got {type(item).__name__}")
