"""Opens a dataset folder whichever supported layout it has."""

from __future__ import annotations

from pathlib import Path

from .atr import read_atr
from .errors import DataError
from .lip import read_lip
from .reader import ParsingReader


def open_dataset(root: Path | str, split: str = "train", densepose_dir: Path | str | None = None) -> ParsingReader:
    """LIP (official or flat layout) or ATR; a synthetic dataset's IUV folder is found by itself."""
    root = Path(root)
    if densepose_dir is None and (root / "densepose").is_dir():
        densepose_dir = root / "densepose"
    errors = []
    for reader in (read_lip, read_atr):
        try:
            return reader(root, split, densepose_dir=densepose_dir)
        except DataError as err:
            if "layout found" not in err.reason:
                raise
            errors.append(err.reason)
    raise DataError(root, "no known dataset layout (" + "; ".join(errors) + ")")
