"""ATR reader (``humanparsing/JPEGImages`` + ``humanparsing/SegmentationClassAug``) and its
deterministic split.

No official split exists. Ours orders image names by the SHA-1 of the name (independent of file
system order, random generators and library versions), then takes the first ``test`` names as
test, the next ``val`` as val and the rest as train. The defaults are the usual 1,000 / 700 of the
17,706-image release (16,006 train); a smaller dataset gets the same proportions. The split is
written to ``train.txt`` / ``val.txt`` / ``test.txt`` so that results can be repeated even if files
are added later. ATR has no keypoints: its samples have ``has_pose`` False.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from ..ops.atomic import write_text
from ..ops.errors import InputError
from .errors import DataError
from .reader import IMAGE_SUFFIXES, ParsingReader, attach_densepose, index_files, read_id_list
from .sample import Record

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
RELEASE_SIZE, RELEASE_VAL, RELEASE_TEST = 17_706, 700, 1_000


def find_atr_root(root: Path | str) -> Path:
    """The folder holding JPEGImages/ and SegmentationClassAug/ (``root`` or ``root/humanparsing``)."""
    root = Path(root)
    for candidate in (root, root / "humanparsing"):
        if (candidate / "JPEGImages").is_dir():
            return candidate
    raise DataError(root, "no ATR layout found: looked for humanparsing/JPEGImages and JPEGImages")


def split_sizes(n: int, val: int | None = None, test: int | None = None) -> tuple[int, int, int]:
    """(train, val, test) counts; default val/test keep the release's proportions."""
    val = round(n * RELEASE_VAL / RELEASE_SIZE) if val is None else val
    test = round(n * RELEASE_TEST / RELEASE_SIZE) if test is None else test
    if val < 0 or test < 0 or val + test > n:
        raise InputError(f"cannot take {val} val and {test} test images from {n}")
    return n - val - test, val, test


def make_split(names: list[str], val: int | None = None, test: int | None = None) -> dict[str, list[str]]:
    ordered = sorted(names, key=lambda s: hashlib.sha1(s.encode("utf-8")).hexdigest())
    _, n_val, n_test = split_sizes(len(ordered), val, test)
    return {"test": sorted(ordered[:n_test]), "val": sorted(ordered[n_test:n_test + n_val]),
            "train": sorted(ordered[n_test + n_val:])}


def write_split(root: Path | str, out: Path | str | None = None, val: int | None = None,
                test: int | None = None) -> dict[str, Path]:
    """Writes the split files (default ``<atr root>/splits``); returns their paths."""
    atr = find_atr_root(root)
    names = sorted(index_files(atr / "JPEGImages", IMAGE_SUFFIXES))
    if not names:
        raise DataError(atr / "JPEGImages", "no images found")
    out = Path(out) if out else atr / "splits"
    paths = {}
    for split, ids in make_split(names, val, test).items():
        paths[split] = out / f"{split}.txt"
        write_text(paths[split], "".join(f"{i}\n" for i in ids))
    return paths


def read_atr(root: Path | str, split: str = "train", split_dir: Path | str | None = None,
             densepose_dir: Path | str | None = None) -> ParsingReader:
    """ATR reader; ``split`` is train / val / test from the split files, or ``all``. Split files
    are created in ``split_dir`` (default ``<atr root>/splits``) on first use."""
    atr = find_atr_root(root)
    images = index_files(atr / "JPEGImages", IMAGE_SUFFIXES)
    labels = index_files(atr / "SegmentationClassAug", (".png",))
    if split == "all":
        ids = sorted(images)
    elif split in SPLITS:
        split_dir = Path(split_dir) if split_dir else atr / "splits"
        if not (split_dir / f"{split}.txt").is_file():
            try:
                write_split(atr, split_dir)
            except OSError as err:
                raise DataError(split_dir, f"no split files and cannot write them ({err}); run "
                                           "`spd data split-atr ROOT --out DIR` and pass that folder") from err
            log.info("wrote the ATR split files to %s", split_dir)
        ids = read_id_list(split_dir / f"{split}.txt")
    else:
        raise InputError(f"unknown ATR split {split!r}; expected one of {SPLITS + ('all',)}")
    missing = [i for i in ids if i not in images]
    if missing:
        raise DataError(atr / "JPEGImages", f"{len(missing)} ids of the {split} split have no image "
                                            f"(first: {missing[0]!r})")
    records = [Record(i, images[i], labels.get(i)) for i in ids]
    records, missing_dp = attach_densepose(records, Path(densepose_dir) if densepose_dir else None)
    reader = ParsingReader(root=atr, split=split, label_space="atr", layout="ATR humanparsing layout",
                           records=records, missing_parsing=[r.id for r in records if r.parsing is None],
                           missing_densepose=missing_dp, has_pose=False)
    reader.warn_missing()
    return reader
