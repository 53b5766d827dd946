"""``spd data check``: finds a dataset's layout and reports every problem in one pass (missing or
unreadable files, image / label size mismatches, label values outside the class range other than
255, malformed pose CSV rows, keypoints outside their image, bad IUV maps), with file names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..labels import label_space
from .atr import SPLITS as ATR_SPLITS, find_atr_root
from .errors import DataError, Problem
from .image_io import read_image
from .lip import SPLITS as LIP_SPLITS, find_lip_layout, lip_records
from .pose_csv import read_pose_csv
from .reader import IMAGE_SUFFIXES, attach_densepose, index_files, read_id_list
from .rules import compression_problem, outside_joints, split_problem
from .sample import Record, load_densepose, load_parsing
from .synthetic.writer import MANIFEST


@dataclass
class CheckReport:
    root: Path
    layout: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> what -> count
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        lines = [f"{self.layout} at {self.root}"]
        for split, counts in self.counts.items():
            lines.append(f"  {split}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        lines += [f"  note: {n}" for n in self.notes]
        if self.problems:
            lines.append(f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}:")
            lines += [f"  {p}" for p in self.problems]
        else:
            lines.append("no problems found")
        return "\n".join(lines)


LARGE_SIDE = 4000


def check_record(record: Record, space: str, problems: list[Problem], require_parsing: bool) -> dict[str, bool]:
    """Reads each file of one record on its own, so that one bad file does not hide another."""
    found = {"image": False, "label": False, "iuv": False, "large": False}
    try:
        image = read_image(record.image)
        hw = tuple(image.shape[-2:])
        found["image"] = True
        found["large"] = max(hw) > LARGE_SIDE
    except DataError as err:
        problems.append(Problem.from_error(err))
        hw = None
    if record.parsing is None:
        if require_parsing:
            problems.append(Problem(record.image, "no label PNG for this image"))
    elif hw is not None:
        try:
            labels = load_parsing(record.parsing, hw, record.image, label_space(space).num_classes)
            found["label"] = True
            compressed = compression_problem(labels.numpy())
            if compressed:
                problems.append(Problem(record.parsing, compressed))
        except DataError as err:
            problems.append(Problem.from_error(err))
    if record.keypoints is not None and hw is not None:
        outside = outside_joints(record.keypoints, hw)
        if outside:
            problems.append(Problem(record.image, f"keypoints {outside} lie outside the {hw[1]}x{hw[0]} image "
                                                  "(training treats them as missing)"))
    if record.densepose is not None and hw is not None:
        try:
            load_densepose(record.densepose, hw, record.image)
            found["iuv"] = True
        except DataError as err:
            problems.append(Problem.from_error(err))
    return found


def _check_records(report: CheckReport, split: str, records: list[Record], space: str, require_parsing: bool,
                   with_pose: bool, with_densepose: bool, tick: Callable[[], None] | None) -> None:
    counts = {"images": 0, "labels": 0}
    if with_pose:
        counts["pose rows"] = sum(r.keypoints is not None for r in records)
    if with_densepose:
        counts["IUV maps"] = 0
    large = []
    for record in records:
        found = check_record(record, space, report.problems, require_parsing)
        counts["images"] += found["image"]
        if found["large"]:
            large.append(record.image)
        counts["labels"] += found["label"]
        if with_densepose:
            counts["IUV maps"] += found["iuv"]
        if tick:
            tick()
    report.counts[split] = counts
    empty = split_problem(split, len(records))
    if empty:
        report.problems.append(Problem(report.root, empty))
    if large:
        report.notes.append(f"{split}: {len(large)} images have a side over {LARGE_SIDE} px (e.g. {large[0]}): "
                            "evaluation resizes them band by band, but each is decoded whole (about 12 bytes a pixel "
                            "while loading); consider downscaling them")


def _check_lip(root: Path, densepose_dir: Path | None, tick: Callable[[], None] | None) -> CheckReport:
    report: CheckReport | None = None
    absent: list[DataError] = []
    for split in LIP_SPLITS:
        try:
            layout = find_lip_layout(root, split)
        except DataError as err:
            if split != "test":
                absent.append(err)
            continue
        report = report or CheckReport(root, layout.kind)
        pose = read_pose_csv(layout.pose_csv, report.problems) if layout.pose_csv else None
        try:
            records, missing = lip_records(layout, pose)
        except DataError as err:  # a broken id list
            report.problems.append(Problem.from_error(err))
            continue
        for key in missing:
            report.problems.append(Problem(layout.id_list or layout.images, f"id {key!r} is listed but has no image in {layout.images}"))
        if pose is not None:
            for r in records:
                if r.keypoints is None:
                    report.problems.append(Problem(layout.pose_csv, f"no row for image {r.id!r}"))
            known = set(index_files(layout.images, IMAGE_SUFFIXES)) | {r.id for r in records} | set(missing)
            for key in sorted(set(pose) - known):
                report.problems.append(Problem(layout.pose_csv, f"row for {key!r}, which has no image"))
        if layout.id_list is None:
            report.notes.append(f"{split}: no {split}_id.txt; every image in {layout.images} is used")
        records, _ = attach_densepose(records, densepose_dir)
        _check_records(report, split, records, "lip", split != "test", layout.pose_csv is not None,
                       densepose_dir is not None, tick)
    if report is None:
        raise DataError(root, "no LIP layout found")
    # Training reads a train and a val split (data.train_split / data.val_split).
    report.problems += [Problem(err.path, err.reason if err.path != root else
                                f"{err.reason}; training needs the train and val splits") for err in absent]
    return report


def _check_atr(root: Path, densepose_dir: Path | None, tick: Callable[[], None] | None) -> CheckReport:
    atr = find_atr_root(root)
    report = CheckReport(atr, "ATR humanparsing layout")
    images = index_files(atr / "JPEGImages", IMAGE_SUFFIXES)
    labels = index_files(atr / "SegmentationClassAug", (".png",))
    for key in sorted(set(labels) - set(images)):
        report.problems.append(Problem(labels[key], "label without an image"))
    split_dir = atr / "splits"
    for split in ATR_SPLITS:
        path = split_dir / f"{split}.txt"
        if path.is_file():
            try:
                for key in read_id_list(path):
                    if key not in images:
                        report.problems.append(Problem(path, f"id {key!r} has no image"))
            except DataError as err:
                report.problems.append(Problem.from_error(err))
    if not split_dir.is_dir():
        report.notes.append("no split files yet; `spd data split-atr` writes them")
    records = [Record(k, images[k], labels.get(k)) for k in sorted(images)]
    records, _ = attach_densepose(records, densepose_dir)
    _check_records(report, "all", records, "atr", True, False, densepose_dir is not None, tick)
    return report


def count_images(root: Path | str) -> int:
    """Upper bound of the records a check will read (for a progress bar)."""
    return sum(1 for _ in Path(root).rglob("*.jpg")) + sum(1 for _ in Path(root).rglob("*.jpeg"))


def check_dataset(root: Path | str, densepose_dir: Path | str | None = None,
                  tick: Callable[[], None] | None = None) -> CheckReport:
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "dataset folder not found")
    dp = Path(densepose_dir) if densepose_dir else None
    if dp is not None and not dp.is_dir():
        raise DataError(dp, "DensePose folder not found")
    automatic = dp is None and (root / "densepose").is_dir()  # what training reads when no folder is given
    if automatic:
        dp = root / "densepose"
    if ".partial-" in root.name:
        raise DataError(root, "an interrupted synthetic generation (a hidden partial folder); delete it")
    try:
        report = _check_lip(root, dp, tick)
    except DataError:
        try:
            report = _check_atr(root, dp, tick)
        except DataError:
            raise DataError(root, "no known dataset layout: expected LIP (TrainVal_images/... or train_images/) "
                                  "or ATR (humanparsing/JPEGImages)") from None
    if automatic:
        report.notes.append(f"DensePose targets from {dp} (training uses this folder when no other is given)")
    _check_manifest(root, report)
    return report


def _check_manifest(root: Path, report: CheckReport) -> None:
    """A synthetic dataset's manifest says how many people it holds: fewer or more images than that
    is an interrupted or altered folder."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        return
    try:
        expected = int((yaml.safe_load(manifest.read_text(encoding="utf-8")) or {})["num"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        report.problems.append(Problem(manifest, f"unreadable synthetic manifest ({err})"))
        return
    found = sum(c.get("images", 0) for split, c in report.counts.items() if split != "test")
    if found != expected:
        report.problems.append(Problem(manifest, f"describes {expected} generated people, but {found} images are "
                                                 "readable: an incomplete or altered synthetic folder"))
