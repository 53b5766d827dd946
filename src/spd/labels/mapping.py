"""Cross-dataset label mappings (LIP <-> ATR shared classes and super-classes), read from YAML."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ops.errors import InputError, UnknownName
from .spaces import IGNORE_INDEX, label_space, read_yaml


@dataclass(frozen=True)
class MappingGroup:
    name: str
    members: dict[str, tuple[int, ...]]  # label-space name -> class ids in this group


@dataclass(frozen=True)
class LabelMapping:
    """Groups of classes shared by several label spaces; classes in no group are ignored."""

    name: str
    groups: tuple[MappingGroup, ...]

    @property
    def num_classes(self) -> int:
        return len(self.groups)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    def lut(self, space: str) -> np.ndarray:
        """uint8[256]: class id of ``space`` -> group index, 255 where the class has no group."""
        lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        for index, group in enumerate(self.groups):
            for cls in group.members.get(space, ()):
                lut[cls] = index
        return lut


def _mapping(doc: dict, where: str) -> LabelMapping:
    try:
        return _groups(doc, where)
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(f"{where}: a mapping needs 'name' and 'groups', each group a 'name' and lists of class ids "
                         f"per label space ({type(err).__name__}: {err})") from None


def _groups(doc: dict, where: str) -> LabelMapping:
    groups = []
    seen: dict[tuple[str, int], str] = {}
    for i, g in enumerate(doc["groups"]):
        members = {k: tuple(int(c) for c in v) for k, v in g.items() if k != "name"}
        for space, ids in members.items():
            n = label_space(space).num_classes
            for c in ids:
                if not 0 <= c < n:
                    raise InputError(f"{where}: group {g['name']!r}: {space} class {c} is out of range 0..{n - 1}")
                if (space, c) in seen:
                    raise InputError(f"{where}: {space} class {c} is in both {seen[(space, c)]!r} and {g['name']!r}")
                seen[(space, c)] = g["name"]
        groups.append(MappingGroup(name=str(g.get("name", f"group{i}")), members=members))
    return LabelMapping(name=str(doc["name"]), groups=tuple(groups))


def load_mapping(kind: str = "shared", path: Path | str = "lip_atr.yaml") -> LabelMapping:
    """``kind`` is a top-level key of the mapping file (``shared`` or ``super`` in the default one)."""
    doc = read_yaml(path)
    if kind not in doc:
        raise UnknownName(f"{path}: no mapping {kind!r}; found {sorted(doc)}")
    return _mapping(doc[kind], f"{path}:{kind}")
