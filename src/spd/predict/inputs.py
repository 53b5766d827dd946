"""What ``spd predict`` reads: files, folders (recursively), glob patterns and videos, each with
the output name it will get (its path relative to the folder or pattern it came from)."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"})


def image_suffixes() -> frozenset[str]:
    """Every file suffix Pillow can open here."""
    Image.init()
    return frozenset(s.lower() for s in Image.registered_extensions())


@dataclass(frozen=True)
class InputItem:
    path: Path
    name: Path       # output name without suffix, relative to --out
    video: bool


def _item(path: Path, relative: Path) -> InputItem:
    return InputItem(path, relative.with_suffix(""), path.suffix.lower() in VIDEO_SUFFIXES)


def expand_inputs(args: list[str], exclude: Path | None = None) -> tuple[list[InputItem], list[str], Path | None]:
    """(items in a stable order, problems, ``exclude`` when it lies inside a searched folder).
    A missing path or a pattern that matches nothing is a problem; files in folders whose suffix is
    neither an image's nor a video's are not inputs; nor is anything under ``exclude`` (the output
    folder, whose files a second run would otherwise read back as inputs) when it is a subfolder
    of a searched folder."""
    wanted = image_suffixes() | VIDEO_SUFFIXES
    items, problems = [], []
    out = exclude.resolve() if exclude is not None else None
    excluded = None

    def searched(base: Path, files) -> list[Path]:
        """``files`` found under ``base``, less those in the output folder when it lies inside ``base``."""
        nonlocal excluded
        base = base.resolve()
        if out is None or out == base or not out.is_relative_to(base):
            return sorted(files)
        excluded = exclude
        return sorted(p for p in files if not p.resolve().is_relative_to(out))

    for arg in args:
        path = Path(arg)
        if path.is_file():
            items.append(_item(path, Path(path.name)))
        elif path.is_dir():
            candidates = [p for p in path.rglob("*") if p.suffix.lower() in wanted]  # one walk of the folder
            problems += [f"{p}: a broken link (to {os.readlink(p)})" for p in sorted(candidates)
                         if p.is_symlink() and not p.exists()]
            found = searched(path, (p for p in candidates if p.is_file()))
            if not found:
                problems.append(f"{path}: folder has no image or video files")
            items += [_item(p, p.relative_to(path)) for p in found]
        elif glob.has_magic(arg):
            base = Path(arg.split("*")[0].split("?")[0].split("[")[0])
            base = base if base.is_dir() else base.parent
            found = searched(base, (Path(p) for p in glob.glob(arg, recursive=True) if Path(p).is_file()))
            if not found:
                problems.append(f"{arg}: pattern matches no file")
            items += [_item(p, p.relative_to(base) if p.is_relative_to(base) else Path(p.name)) for p in found]
        else:
            problems.append(f"{path}: no such file or folder")
    seen: dict[Path, Path] = {}
    unique = []
    for item in items:
        if item.name in seen:
            if seen[item.name] != item.path:
                problems.append(f"{item.path}: its outputs would have the same name as those of {seen[item.name]} "
                                "(predict them in separate runs or from their common folder)")
            continue
        seen[item.name] = item.path
        unique.append(item)
    return unique, problems, excluded
