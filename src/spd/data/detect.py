"""Opens a dataset folder whichever supported layout it has."""

from __future__ import annotations

from pathlib import Path

from .atr import find_atr_root, read_atr
from .errors import DataError
from .lip import read_lip
from .reader import ParsingReader


def open_dataset(root: Path | str, split: str = "train", densepose_dir: Path | str | None = None) -> ParsingReader:
    """LIP (official or flat layout) or ATR; a synthetic dataset's IUV folder is found by itself."""
    root = Path(root)
    if densepose_dir is None and (root / "densepose").is_dir():
        densepose_dir = root / "densepose"
    try:
        find_atr_root(root)
    except DataError:
        return read_lip(root, split, densepose_dir=densepose_dir)
    return read_atr(root, split, densepose_dir=densepose_dir)
