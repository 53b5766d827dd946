"""Deterministic weights for any state dict, from its keys and shapes alone: the tests use them to
check that a model built by today's code computes what a model saved by an earlier version of the
code computed (tests/fixtures/presets_v0.json, written before the trunk / heads restructuring)."""

from __future__ import annotations

import math
import zlib

import torch


def reference_tensor(key: str, shape: tuple[int, ...], dtype: str = "float32") -> torch.Tensor:
    """A tensor for ``key`` that depends on the key's name and shape only (same on every machine)."""
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    if dtype.startswith("int"):
        return torch.full(shape, 7, dtype=getattr(torch, dtype))
    if key.endswith("running_var"):
        return torch.rand(shape, generator=g) * 0.5 + 0.75
    if key.endswith("running_mean"):
        return torch.randn(shape, generator=g) * 0.1
    if len(shape) == 1:
        base = 1.0 if key.endswith("weight") else 0.0
        return base + 0.1 * torch.randn(shape, generator=g)
    fan_in = math.prod(shape[1:])
    return torch.randn(shape, generator=g) * (0.7 * math.sqrt(2.0 / fan_in))


def reference_state(shapes: dict[str, tuple[list[int], str]]) -> dict[str, torch.Tensor]:
    """key -> (shape, dtype name) -> the state dict of :func:`reference_tensor` values."""
    return {k: reference_tensor(k, tuple(shape), dtype) for k, (shape, dtype) in shapes.items()}


def reference_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """uint8 RGB [3, H, W] with smooth structure (random pixels would make every model's output noise)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 5, 4, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)[0]
    noise = torch.rand(3, height, width, generator=g) * 0.2
    return ((smooth * 0.8 + noise) * 255).round().clamp(0, 255).to(torch.uint8)


def summary(t: torch.Tensor, samples: int = 24) -> dict:
    """Shape, sum, absolute sum and values at fixed positions: enough to tell two outputs apart."""
    flat = t.detach().double().flatten()
    index = torch.linspace(0, flat.numel() - 1, samples).round().long()
    return {"shape": list(t.shape), "sum": float(flat.sum()), "abs_sum": float(flat.abs().sum()),
            "samples": flat[index].tolist()}
