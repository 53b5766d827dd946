"""A dataset record (paths and parsed annotations) and the loaded sample (tensors).

Every sample says which targets it has (``has_parsing``, ``has_pose``, ``has_densepose``) so that
losses can mask a missing task per sample instead of training on a fake target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import DataError
from .image_io import read_iuv, read_image, read_label


@dataclass(frozen=True)
class Record:
    """Where one sample's files are. ``keypoints`` is float32 [K, 3] (x, y, v) with nan for missing
    joints, as in the LIP CSV; ``None`` means the dataset has no pose annotation for this image."""

    id: str
    image: Path
    parsing: Path | None = None
    keypoints: np.ndarray | None = None
    densepose: Path | None = None


@dataclass
class Sample:
    """One loaded sample, at the image's own resolution.

    image:      uint8 [3, H, W], RGB
    parsing:    uint8 [H, W], class ids of ``label_space``, 255 = ignore; None if not annotated
    keypoints:  float32 [K, 2], (x = column, y = row) in pixels, nan = missing; None if no pose
    visibility: float32 [K], the annotation's v value, nan = missing
    dp_index:   uint8 [H, W], DensePose part 0..24; None if no DensePose target
    dp_uv:      float32 [2, H, W], U and V in [0, 1]
    """

    id: str
    label_space: str
    image: torch.Tensor
    parsing: torch.Tensor | None = None
    keypoints: torch.Tensor | None = None
    visibility: torch.Tensor | None = None
    dp_index: torch.Tensor | None = None
    dp_uv: torch.Tensor | None = None
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def has_parsing(self) -> bool:
        return self.parsing is not None

    @property
    def has_pose(self) -> bool:
        return self.keypoints is not None

    @property
    def has_densepose(self) -> bool:
        return self.dp_index is not None


def check_size(path: Path, what: str, size: tuple[int, ...], image_size: tuple[int, ...], image: Path) -> None:
    if tuple(size) != tuple(image_size):
        raise DataError(path, f"{what} is {size[1]}x{size[0]} (WxH) but its image {image.name} "
                              f"is {image_size[1]}x{image_size[0]}")


def load_parsing(path: Path, image_hw: tuple[int, int], image: Path, num_classes: int) -> torch.Tensor:
    """A label PNG checked against its image's size and the class range (255 allowed)."""
    parsing = read_label(path)
    check_size(path, "label", tuple(parsing.shape), image_hw, image)
    bad = torch.unique(parsing[(parsing >= num_classes) & (parsing != 255)])
    if bad.numel():
        raise DataError(path, f"label values {bad.tolist()} are outside 0..{num_classes - 1} (and not 255)")
    return parsing


def load_densepose(path: Path, image_hw: tuple[int, int], image: Path) -> tuple[torch.Tensor, torch.Tensor]:
    index, uv = read_iuv(path)
    check_size(path, "IUV map", tuple(index.shape), image_hw, image)
    return index, uv


def load_record(record: Record, label_space: str, num_classes: int) -> Sample:
    """Reads every file of ``record``; raises DataError naming the file at fault."""
    image = read_image(record.image)
    hw = tuple(image.shape[-2:])
    sample = Sample(id=record.id, label_space=label_space, image=image, paths={"image": record.image})
    if record.parsing is not None:
        sample.parsing = load_parsing(record.parsing, hw, record.image, num_classes)
        sample.paths["parsing"] = record.parsing
    if record.keypoints is not None:
        kp = torch.from_numpy(np.asarray(record.keypoints, dtype=np.float32))
        missing = ~torch.isfinite(kp[:, :2]).all(dim=1)
        sample.keypoints = torch.where(missing[:, None], torch.nan, kp[:, :2])
        sample.visibility = torch.where(missing, torch.nan, kp[:, 2])
    if record.densepose is not None:
        sample.dp_index, sample.dp_uv = load_densepose(record.densepose, hw, record.image)
        sample.paths["densepose"] = record.densepose
    return sample
