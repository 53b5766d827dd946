"""Label spaces (classes, palettes, left/right flip tables) loaded from the YAML files beside this
module. Every other module takes its tables from here, so that augmentation, test-time flipping,
metrics and visualisation cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..ops.errors import InputError, UnknownName

IGNORE_INDEX = 255
# Parsing spaces (a model's classes) and DensePose's part space, each a YAML file beside this module.
PARSING_SPACES = ("lip", "atr", "pascal")
LABEL_SPACES = (*PARSING_SPACES, "densepose")


def _pair_permutation(n: int, pairs: tuple[tuple[int, int], ...], what: str) -> tuple[int, ...]:
    perm = list(range(n))
    for a, b in pairs:
        if not (0 <= a < n and 0 <= b < n) or a == b:
            raise InputError(f"{what}: flip pair ({a}, {b}) is out of range 0..{n - 1}")
        if perm[a] != a or perm[b] != b:
            raise InputError(f"{what}: index in flip pair ({a}, {b}) appears twice")
        perm[a], perm[b] = b, a
    return tuple(perm)


@dataclass(frozen=True)
class LabelSpace:
    """Parsing (or DensePose part) classes: names, RGB palette and the horizontal-flip swaps."""

    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if len(self.palette) != len(self.classes):
            raise InputError(f"label space {self.name!r}: {len(self.palette)} palette colours for "
                             f"{len(self.classes)} classes")
        if len(self.classes) > IGNORE_INDEX:
            raise InputError(f"label space {self.name!r}: too many classes for 8-bit labels")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def flip_permutation(self) -> tuple[int, ...]:
        """``perm[c]`` is the class that ``c`` becomes in the mirrored image."""
        return _pair_permutation(self.num_classes, self.flip_pairs, f"label space {self.name!r}")

    def flip_lut(self) -> np.ndarray:
        """uint8[256] lookup table that swaps left/right ids and keeps every other value (255 too)."""
        lut = np.arange(256, dtype=np.uint8)
        lut[: self.num_classes] = self.flip_permutation
        return lut

    def palette_array(self) -> np.ndarray:
        """uint8[256, 3]; ids outside the label space (ignore) are drawn white."""
        pal = np.full((256, 3), 255, dtype=np.uint8)
        pal[: self.num_classes] = np.asarray(self.palette, dtype=np.uint8)
        return pal


@dataclass(frozen=True)
class KeypointSpace:
    """Keypoint names, flip pairs, skeleton edges and the PCKh head segment and joint groups."""

    name: str
    joints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    head_segment: tuple[int, int]
    pckh_groups: dict[str, tuple[int, ...]]

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def flip_permutation(self) -> tuple[int, ...]:
        """``perm[j]`` is the joint index that joint ``j`` becomes in the mirrored image."""
        return _pair_permutation(self.num_joints, self.flip_pairs, f"keypoints {self.name!r}")

    def index(self, joint: str) -> int:
        return self.joints.index(joint)


def _pairs(value: Any) -> tuple[tuple[int, int], ...]:
    return tuple((int(a), int(b)) for a, b in value)


def _label_space(doc: dict[str, Any]) -> LabelSpace:
    return LabelSpace(
        name=str(doc["name"]),
        classes=tuple(str(c) for c in doc["classes"]),
        palette=tuple((int(r), int(g), int(b)) for r, g, b in doc["palette"]),
        flip_pairs=_pairs(doc["flip_pairs"]),
    )


def _keypoint_space(doc: dict[str, Any]) -> KeypointSpace:
    head = doc["head_segment"]
    return KeypointSpace(
        name=str(doc["name"]),
        joints=tuple(str(j) for j in doc["joints"]),
        flip_pairs=_pairs(doc["flip_pairs"]),
        skeleton=_pairs(doc["skeleton"]),
        head_segment=(int(head[0]), int(head[1])),
        pckh_groups={str(k): tuple(int(i) for i in v) for k, v in doc["pckh_groups"].items()},
    )


def read_yaml(path: Path | str) -> dict[str, Any]:
    """A YAML mapping from a file path, or from a file shipped in this package (bare name)."""
    path = Path(path)
    try:
        if path.parent == Path(".") and not path.exists():
            text = resources.files(__package__).joinpath(path.name).read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        doc = yaml.safe_load(text)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a YAML file (not UTF-8 text)") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({getattr(err, 'problem', None) or err}"
                         f"{_where(err)})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a YAML mapping at the top level")
    return doc


def _where(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    return f", line {mark.line + 1}" if mark is not None else ""


@cache
def label_space(name: str) -> LabelSpace:
    """A label space by name: one of :data:`LABEL_SPACES`."""
    if name not in LABEL_SPACES:
        raise UnknownName(f"unknown label space {name!r}; known: {', '.join(LABEL_SPACES)}")
    return _label_space(read_yaml(f"{name}.yaml"))


@cache
def keypoint_space(name: str = "lip16") -> KeypointSpace:
    """The 16 LIP (MPII-ordered) keypoints."""
    if name != "lip16":
        raise UnknownName(f"unknown keypoint space {name!r}; known: lip16")
    return _keypoint_space(read_yaml("lip.yaml")["keypoints"])
