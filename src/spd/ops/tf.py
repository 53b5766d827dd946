"""TensorFlow 1 operators as JPPNet's official graph computes them, for a port that is the same
function: "SAME" padding of strided convs and pools, the legacy (pre-2.0) image resizes, and
TensorFlow's default initialisers.

PyTorch pads symmetrically; TensorFlow's SAME pads ``total // 2`` before and the rest after, which
on an even input of a stride-2 layer is one pixel more at the bottom / right. PyTorch's bilinear
resize samples at half-pixel centres; TF1's ``resize_bilinear`` (``align_corners=False``, no
``half_pixel_centers``) samples output pixel ``i`` at input coordinate ``i * in / out``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of one axis under TensorFlow's "SAME": output ceil(size / stride)."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "SAME" padding (built with ``padding=0``); parameters and
    state-dict keys are those of ``nn.Conv2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = (same_padding(x.shape[-2 + i], self.kernel_size[i], self.stride[i],
                                                     self.dilation[i]) for i in range(2))
        return super().forward(F.pad(x, (left, right, top, bottom)))


class SameMaxPool2d(nn.Module):
    """Max pooling with TensorFlow's "SAME" padding: padded cells never win (they are -inf)."""

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = (same_padding(x.shape[-2 + i], self.kernel, self.stride) for i in range(2))
        return F.max_pool2d(F.pad(x, (left, right, top, bottom), value=-math.inf), self.kernel, self.stride)


def float32_ratio(size_in: int, size_out: int) -> float:
    """``in / out`` rounded to float32 (TensorFlow's scale), as a Python number: multiplying a
    float32 tensor by it computes in float32 exactly as TensorFlow does, with no host-to-device copy."""
    return float(np.float32(size_in / size_out))


def legacy_source(index: torch.Tensor, size_in: int, size_out: int) -> torch.Tensor:
    """Input coordinates that TF1's legacy resizes read for output pixels ``index``: ``i * in / out``
    with the scale a float32, as TensorFlow computes it, so that coordinates round the same way."""
    return index.float() * float32_ratio(size_in, size_out)


def _legacy_axis(x: torch.Tensor, size_in: int, size_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices (lo, hi) and the weight of ``hi`` along one axis of ``x``'s resize. Those of a
    plain tensor are cached (read only): a full-size training step resizes between the same few
    sizes about a hundred times. Other kinds (the fake tensors of the memory estimate, which must not
    meet real ones) get their own, and so does ``torch.compile``'s tracing (which makes them part of
    its graph)."""
    if type(x) is torch.Tensor and not torch.compiler.is_compiling():
        return _cached_axis(size_in, size_out, x.device)
    return _axis(size_in, size_out, x.device)


def _axis(size_in: int, size_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    src = legacy_source(torch.arange(size_out, device=device), size_in, size_out)
    lo = src.floor().long().clamp_max(size_in - 1)
    hi = (lo + 1).clamp_max(size_in - 1)
    return lo, hi, src - lo.float()


@functools.lru_cache(maxsize=512)
def _cached_axis(size_in: int, size_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # Made outside inference mode: those first made by validation or the Predictor must still be
    # saved for a later training step's backward.
    with torch.inference_mode(False):
        return _axis(size_in, size_out, device)


def legacy_bilinear_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1 ``tf.image.resize_images`` / ``resize_bilinear`` (align_corners=False, no half-pixel
    centres). ``x``: [B, C, H, W] -> [B, C, *size]."""
    (h, w), (oh, ow) = x.shape[-2:], size
    if (h, w) == (oh, ow):
        return x
    y0, y1, wy = _legacy_axis(x, h, oh)
    x0, x1, wx = _legacy_axis(x, w, ow)
    wy, wx = wy.to(x.dtype)[:, None], wx.to(x.dtype)
    # index_select, not x[..., idx, :]: the backward of advanced indexing is a sort-based index_put
    # on CUDA; index_select's is an index_add (about a hundred of these per training step of spd).
    top, bottom = x.index_select(-2, y0), x.index_select(-2, y1)
    rows = top + (bottom - top) * wy
    left, right = rows.index_select(-1, x0), rows.index_select(-1, x1)
    return left + (right - left) * wx


def legacy_nearest_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1 ``resize_nearest_neighbor`` (align_corners=False): output ``i`` takes input
    ``floor(i * in / out)``, the top-left of its cell. [B, C, H, W] -> [B, C, *size]."""
    (h, w), (oh, ow) = x.shape[-2:], size
    rows, cols = _legacy_axis(x, h, oh)[0], _legacy_axis(x, w, ow)[0]
    return x.index_select(-2, rows).index_select(-1, cols)


def glorot_uniform_(tensor: torch.Tensor) -> torch.Tensor:
    """TensorFlow's default initialiser (``tf.get_variable`` without one), biases included: uniform
    in +-sqrt(6 / (fan_in + fan_out)); a 1-D tensor of n has fan_in = fan_out = n."""
    if tensor.dim() == 1:
        fan_in = fan_out = tensor.numel()
    else:
        receptive = tensor[0, 0].numel()
        fan_in, fan_out = tensor.shape[1] * receptive, tensor.shape[0] * receptive
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.uniform_(-limit, limit)


def truncated_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """``tf.truncated_normal_initializer``: normal, redrawn outside two standard deviations."""
    return nn.init.trunc_normal_(tensor, std=std, a=-2 * std, b=2 * std)
