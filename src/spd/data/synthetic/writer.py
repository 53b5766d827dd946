"""Writes the synthetic dataset to disk in the real formats, so that the real readers are the ones
exercised: LIP official archive layout (with pose CSVs) or ATR layout (with split files), plus a
folder of full-image IUV PNGs, and a manifest written last (its absence marks an interrupted run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from ... import __version__
from ...atomic import write_text
from ...labels import label_space
from ..atr import write_split
from ..image_io import write_iuv, write_image, write_label
from ..pose_csv import write_pose_csv
from .classes import synthetic_classes
from .domains import Domain, get_domain
from .render import render_person

MANIFEST = "synthetic.yaml"
FORMATS = ("lip", "atr")


@dataclass(frozen=True)
class SynthSpec:
    num: int
    domain: str = "A"
    seed: int = 0
    size: int = 256                 # image height; width = height x the domain's aspect
    format: str | None = None       # lip | atr; default: the domain's
    val_fraction: float = 0.2       # LIP: train / val; ATR: val and test get half of it each

    def __post_init__(self) -> None:
        if self.num < 1:
            raise ValueError(f"synthetic num must be at least 1, got {self.num}")
        if not 0.0 <= self.val_fraction <= 1.0:
            raise ValueError(f"synthetic val_fraction must be in [0, 1], got {self.val_fraction}")
        if self.size < 16:
            raise ValueError(f"synthetic size must be at least 16 px, got {self.size}")

    def resolved_format(self, domain: Domain) -> str:
        fmt = self.format or domain.default_format
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
        return fmt


def sample_id(domain: str, index: int) -> str:
    return f"syn{domain}_{index:06d}"


def image_rng(seed: int, domain: str, index: int) -> np.random.Generator:
    """Each image has its own stream: any image can be regenerated alone, in any order."""
    return np.random.default_rng([seed, ord(domain), index])


def _paths(out: Path, fmt: str, split: str, key: str) -> tuple[Path, Path]:
    if fmt == "lip":
        return (out / "TrainVal_images" / f"{split}_images" / f"{key}.jpg",
                out / "TrainVal_parsing_annotations" / f"{split}_segmentations" / f"{key}.png")
    return out / "humanparsing" / "JPEGImages" / f"{key}.jpg", out / "humanparsing" / "SegmentationClassAug" / f"{key}.png"


def generate(out: Path | str, spec: SynthSpec, progress: Callable[[int], None] | None = None) -> Path:
    """Generates ``spec.num`` people into ``out``; returns the manifest path."""
    out = Path(out)
    if not 32 <= spec.size <= 4096:
        raise ValueError(f"--size must be within 32..4096 pixels, got {spec.size}")
    domain = get_domain(spec.domain)
    fmt = spec.resolved_format(domain)
    hw = (spec.size, max(16, round(spec.size * domain.aspect)))
    space = label_space(fmt)
    classes = synthetic_classes()
    n_val = int(round(spec.num * spec.val_fraction)) if fmt == "lip" else 0
    splits: dict[str, dict[str, np.ndarray]] = {"train": {}, "val": {}}
    views = {"front": 0, "back": 0}
    for index in range(spec.num):
        key = sample_id(domain.name, index)
        split = "val" if index >= spec.num - n_val else "train"
        person = render_person(image_rng(spec.seed, domain.name, index), domain, hw)
        image_path, label_path = _paths(out, fmt, split, key)
        write_image(image_path, person.image)
        write_label(label_path, classes.to(fmt, person.labels), space.palette_array())
        write_iuv(out / "densepose" / f"{key}.png", person.dp_index, person.dp_uv)
        splits[split][key] = person.keypoints
        views[person.view] += 1
        if progress is not None:
            progress(1)

    if fmt == "lip":
        for split, rows in splits.items():
            write_text(out / "TrainVal_images" / f"{split}_id.txt", "".join(f"{k}\n" for k in rows))
            write_pose_csv(out / "TrainVal_pose_annotations" / f"lip_{split}_set.csv", rows)
    else:
        half = int(round(spec.num * spec.val_fraction / 2))
        write_split(out, out / "humanparsing" / "splits", val=half, test=half)
    manifest = out / MANIFEST
    write_text(manifest, yaml.safe_dump({"spd_version": __version__, "format": fmt, "size_hw": list(hw),
                                         "views": views, **asdict(spec)}, sort_keys=False))
    return manifest
