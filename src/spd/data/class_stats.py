"""How often each class occurs in a split, from its label files alone (no image is decoded): what
class-balanced losses weight by. ``target`` "parsing" counts the parsing PNGs, "densepose" the
part index (I channel) of the IUV files."""

from __future__ import annotations

import random

import torch

from ..ops.errors import InputError
from ..ops.validation import require_choice
from .image_io import read_iuv, read_label
from .reader import ParsingReader

TARGETS = ("parsing", "densepose")


def class_frequencies(reader: ParsingReader, num_classes: int, target: str = "parsing", max_images: int = 2000,
                      seed: int = 0) -> torch.Tensor:
    """float64 [num_classes]: each class's share of the labelled pixels (ignore 255 left out) of
    ``reader``'s ``target`` files, or of ``max_images`` of them drawn at random (seeded) on large sets."""
    require_choice("target", target, TARGETS)
    paths = [getattr(r, target) for r in reader.records if getattr(r, target) is not None]
    if len(paths) > max_images:
        paths = random.Random(seed).sample(paths, max_images)
    read = read_label if target == "parsing" else (lambda path: read_iuv(path)[0])
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for path in paths:
        counts += torch.bincount(read(path).flatten().long(), minlength=256)[:num_classes].double()
    if counts.sum() == 0:
        raise InputError(f"{reader.root} ({reader.split}) has no labelled {target} pixel to count classes from")
    return counts / counts.sum()


def balanced_weights(frequencies: torch.Tensor, power: float) -> torch.Tensor:
    """float32 [C]: frequency ** -power, normalised so that the pixel-weighted mean weight is 1 (the
    loss keeps its scale). Classes never seen get the largest weight of the seen ones. power 0
    gives all ones; 0.5 the inverse square root; 1 full inverse-frequency balance."""
    seen = frequencies > 0
    weights = torch.zeros_like(frequencies)
    weights[seen] = frequencies[seen] ** -power
    weights[~seen] = weights[seen].max()
    return (weights / (frequencies * weights).sum()).float()
