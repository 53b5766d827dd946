"""The synthetic generator's own classes and their lookup tables into LIP and ATR (synthetic.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ...labels import label_space
from ...labels.spaces import read_yaml
from ...ops.errors import InputError


@dataclass(frozen=True)
class SyntheticClasses:
    names: tuple[str, ...]
    luts: dict[str, np.ndarray]  # label space -> uint8[256] lookup table

    def id(self, name: str) -> int:
        return self.names.index(name)

    def to(self, space: str, labels: np.ndarray) -> np.ndarray:
        return self.luts[space][labels]


@cache
def synthetic_classes() -> SyntheticClasses:
    doc = read_yaml("synthetic.yaml")
    names = tuple(doc["classes"])
    luts = {}
    for space in ("lip", "atr"):
        table = [int(v) for v in doc[f"to_{space}"]]
        n = label_space(space).num_classes
        if len(table) != len(names) or not all(0 <= v < n for v in table):
            raise InputError(f"synthetic.yaml: to_{space} must give one {space} id (0..{n - 1}) per class")
        lut = np.full(256, 255, dtype=np.uint8)
        lut[: len(names)] = table
        luts[space] = lut
    return SyntheticClasses(names, luts)
