"""Binary masks of chosen classes (``spd predict --mask``): class names of the model's label space
and named sets (``masks.yaml``: the regions try-on pipelines repaint per garment category)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ..ops.errors import InputError
from .spaces import label_space, read_yaml


@cache
def mask_sets() -> dict[str, dict[str, tuple[str, ...]]]:
    """Set name -> label space -> class names."""
    return {name: {space: tuple(map(str, classes)) for space, classes in by_space.items()}
            for name, by_space in read_yaml("masks.yaml").items()}


@dataclass(frozen=True)
class MaskSpec:
    """The class ids (of ``space``) that make the mask, and how far it is grown (pixels)."""

    space: str
    classes: tuple[int, ...]
    dilate: int = 0


def parse_mask(text: str, space: str, dilate: int = 0) -> MaskSpec:
    """``"upper-body"``, ``"hair,face"`` or both mixed -> the class ids; an unknown name is an error
    that lists the set names and the space's classes."""
    classes = label_space(space).classes
    lower = {c.lower(): i for i, c in enumerate(classes)}
    ids: list[int] = []
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise InputError("--mask: give class names or set names, comma-separated")
    for name in names:
        key = name.lower()
        if key in mask_sets():
            ids += [lower[c.lower()] for c in mask_sets()[key].get(space, ())]
        elif key in lower:
            ids.append(lower[key])
        else:
            raise InputError(f"--mask {name!r}: neither a set ({', '.join(mask_sets())}) nor a class of the model's "
                             f"{space} label space ({', '.join(classes)})")
    if dilate < 0:
        raise InputError(f"--mask-dilate must be >= 0 pixels, got {dilate}")
    return MaskSpec(space, tuple(sorted(set(ids))), dilate)
