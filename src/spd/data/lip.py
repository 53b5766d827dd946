"""LIP reader for both layouts found in the wild:

official  TrainVal_images/{train,val}_images/<id>.jpg, TrainVal_parsing_annotations/
          {train,val}_segmentations/<id>.png, TrainVal_pose_annotations/lip_{train,val}_set.csv,
          {train,val}_id.txt (any of these folders may have one more level)
flat      <root>/{train,val}_images, <root>/{train,val}_segmentations, <root>/{train,val}_id.txt,
          pose CSVs beside them where present (CE2P / SCHP)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ops.errors import InputError
from .errors import DataError
from .pose_csv import read_pose_csv
from .reader import (IMAGE_SUFFIXES, ParsingReader, attach_densepose, find_dir, find_file, index_files,
                     read_id_list)
from .sample import Record

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LIPLayout:
    kind: str                  # "LIP official archive" or "LIP flat layout"
    images: Path
    labels: Path | None
    id_list: Path | None
    pose_csv: Path | None


def find_lip_layout(root: Path | str, split: str) -> LIPLayout:
    """Locates one split's folders; raises DataError saying what was looked for."""
    root = Path(root)
    if split not in SPLITS:
        raise InputError(f"unknown LIP split {split!r}; expected one of {SPLITS}")
    if not root.is_dir():
        raise DataError(root, "dataset folder not found")
    images_top = root if root.name == "TrainVal_images" else find_dir(root, "TrainVal_images")
    if images_top is not None:
        images = find_dir(images_top, f"{split}_images")
        if images is not None:
            labels_top = find_dir(root, "TrainVal_parsing_annotations")
            pose_top = find_dir(root, "TrainVal_pose_annotations")
            return LIPLayout(
                kind="LIP official archive",
                images=images,
                labels=find_dir(labels_top, f"{split}_segmentations") if labels_top else None,
                id_list=find_file([images_top, root], f"{split}_id.txt"),
                pose_csv=find_file([pose_top, root], f"lip_{split}_set.csv"),
            )
    if (root / f"{split}_images").is_dir():
        return LIPLayout(
            kind="LIP flat layout",
            images=root / f"{split}_images",
            labels=root / f"{split}_segmentations" if (root / f"{split}_segmentations").is_dir() else None,
            id_list=find_file([root], f"{split}_id.txt"),
            pose_csv=find_file([root, find_dir(root, "TrainVal_pose_annotations")], f"lip_{split}_set.csv"),
        )
    for candidate in (root / f"{split}_images", root / "TrainVal_images" / f"{split}_images"):
        if candidate.exists() and not candidate.is_dir():
            raise DataError(candidate, "is a file, where the split's image folder should be")
    raise DataError(root, f"no LIP layout found for split {split!r}: looked for "
                          f"TrainVal_images/{split}_images (official archive) and {split}_images (flat layout)")


def lip_records(layout: LIPLayout, pose: dict[str, np.ndarray] | None) -> tuple[list[Record], list[str]]:
    """Records in id-list order (or sorted image names when there is no id list), and the ids
    whose image is missing. Pose rows (from :func:`read_pose_csv`) and label files are attached
    where they exist."""
    images = index_files(layout.images, IMAGE_SUFFIXES)
    labels = index_files(layout.labels, (".png",)) if layout.labels else {}
    ids = read_id_list(layout.id_list) if layout.id_list else sorted(images)
    records, missing_images = [], []
    for key in ids:
        if key not in images:
            missing_images.append(key)
            continue
        keypoints = pose.get(key) if pose is not None else None
        records.append(Record(key, images[key], labels.get(key), keypoints))
    return records, missing_images


def read_lip(root: Path | str, split: str = "train", densepose_dir: Path | str | None = None) -> ParsingReader:
    """LIP reader. Missing image files listed in the id list are an error (run ``spd data check``);
    missing labels, pose rows or IUV files are kept and marked on the sample."""
    layout = find_lip_layout(root, split)
    records, missing_images = lip_records(layout, read_pose_csv(layout.pose_csv) if layout.pose_csv else None)
    if missing_images:
        raise DataError(layout.id_list or layout.images,
                        f"{len(missing_images)} ids have no image in {layout.images} (first: "
                        f"{missing_images[0]!r}); run `spd data check {root}` for the full list")
    records, missing_dp = attach_densepose(records, Path(densepose_dir) if densepose_dir else None)
    reader = ParsingReader(
        root=Path(root), split=split, label_space="lip", layout=layout.kind, records=records,
        missing_parsing=[r.id for r in records if r.parsing is None], missing_densepose=missing_dp,
        has_pose=layout.pose_csv is not None,
    )
    reader.warn_missing()
    return reader
