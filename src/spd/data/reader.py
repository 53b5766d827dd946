"""What the dataset readers share: a list of records in one label space, loaded one by one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..labels import label_space
from .errors import DataError
from .sample import Record, Sample, load_record

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG", ".bmp", ".webp", ".gif", ".GIF", ".tif", ".tiff",
                  ".BMP", ".WEBP", ".TIF", ".TIFF")


def index_files(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    """stem -> path for the files of ``folder`` with one of ``suffixes`` (first suffix wins)."""
    found: dict[str, Path] = {}
    rank = {s: i for i, s in enumerate(suffixes)}
    if not folder.is_dir():
        return found
    for entry in sorted(folder.iterdir()):
        if entry.suffix in rank and entry.is_file():
            prev = found.get(entry.stem)
            if prev is None or rank[entry.suffix] < rank[prev.suffix]:
                found[entry.stem] = entry
    return found


def read_id_list(path: Path) -> list[str]:
    """One id per line; blank lines skipped, a trailing image extension tolerated."""
    ids, seen = [], {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        stem = Path(name).stem if Path(name).suffix.lower() in (".jpg", ".jpeg", ".png") else name
        if stem in seen:
            raise DataError(path, f"id {stem!r} appears again (first on line {seen[stem]})", lineno)
        seen[stem] = lineno
        ids.append(stem)
    return ids


def find_dir(base: Path, name: str) -> Path | None:
    """``base/name`` or ``base/*/name``: some copies of the archives add one folder level."""
    direct = base / name
    if direct.is_dir():
        return direct
    for child in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else ():
        if (child / name).is_dir():
            return child / name
    return None


def find_file(bases: Sequence[Path | None], name: str) -> Path | None:
    for base in bases:
        if base is None:
            continue
        for candidate in (base / name, *sorted(base.glob(f"*/{name}"))):
            if candidate.is_file():
                return candidate
    return None


def attach_densepose(records: list[Record], densepose_dir: Path | None) -> tuple[list[Record], list[str]]:
    """Sets each record's IUV path where ``densepose_dir/<id>.png`` exists; returns the ids without one."""
    if densepose_dir is None:
        return records, []
    if not densepose_dir.is_dir():
        raise DataError(densepose_dir, "DensePose folder not found")
    iuv = index_files(densepose_dir, (".png",))
    out, missing = [], []
    for r in records:
        path = iuv.get(r.id)
        if path is None:
            missing.append(r.id)
        out.append(Record(r.id, r.image, r.parsing, r.keypoints, path))
    return out, missing


@dataclass
class ParsingReader:
    """Records of one split of a human-parsing dataset. ``reader[i]`` loads a :class:`Sample`.

    ``missing_parsing`` / ``missing_densepose`` list the ids whose target file does not exist:
    those samples are kept and say so (``has_parsing`` / ``has_densepose`` False).
    """

    root: Path
    split: str
    label_space: str
    layout: str
    records: list[Record]
    missing_parsing: list[str]
    missing_densepose: list[str]
    has_pose: bool

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:
        return load_record(self.records[index], self.label_space, label_space(self.label_space).num_classes)

    def keep_parsing(self, fraction: float, seed: int = 0) -> "ParsingReader":
        """A copy in which only a random ``fraction`` of the records (at least one) keeps its parsing
        label, chosen by ``seed``; the others keep their other targets (``has_parsing`` False)."""
        labelled = [i for i, r in enumerate(self.records) if r.parsing is not None]
        keep = max(1, round(fraction * len(labelled))) if labelled else 0
        chosen = {labelled[i] for i in np.random.default_rng(seed).permutation(len(labelled))[:keep]}
        records = [r if i in chosen or r.parsing is None else replace(r, parsing=None)
                   for i, r in enumerate(self.records)]
        dropped = [r.id for i, r in enumerate(self.records) if r.parsing is not None and i not in chosen]
        return replace(self, records=records, missing_parsing=self.missing_parsing + dropped)

    def summary(self) -> str:
        n = len(self.records)
        parts = [f"{self.layout}, split {self.split!r}: {n} images",
                 f"{n - len(self.missing_parsing)} parsing labels"]
        if self.has_pose:
            parts.append(f"{sum(r.keypoints is not None for r in self.records)} pose rows")
        else:
            parts.append("no keypoints in this dataset")
        if any(r.densepose is not None for r in self.records) or self.missing_densepose:
            parts.append(f"{n - len(self.missing_densepose)} DensePose targets "
                         f"({len(self.missing_densepose)} images without one)")
        return ", ".join(parts)

    def warn_missing(self) -> None:
        for what, ids in (("parsing label", self.missing_parsing), ("DensePose target", self.missing_densepose)):
            if ids:
                log.warning("%s %s: %d of %d images have no %s (e.g. %s); they are kept and marked so",
                            self.root, self.split, len(ids), len(self.records), what, ids[0])
