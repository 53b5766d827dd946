"""Rules about annotations that ``spd data check`` reports and training applies: each is written
once here and both call it, so that the check and training cannot disagree."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError
from .image_io import read_label
from .reader import ParsingReader

# Annotation masks are regions: a pixel unlike all four neighbours is rare (< 0.1% in hand-drawn
# and rendered labels); JPEG ringing puts 3-40% of pixels there.
NOISE_LIMIT = 0.01
COMPRESSION_SAMPLE = 200  # labels that training looks at before it starts
VISIBILITY = (0.0, 1.0, 2.0)  # the pose CSV's v values (LIP: 0 / 1; COCO-style files also use 2)


def isolated_fraction(labels: np.ndarray) -> float:
    """The fraction of inner pixels whose class differs from each of their four neighbours."""
    if min(labels.shape) < 3:
        return 0.0
    inner = labels[1:-1, 1:-1]
    alone = ((inner != labels[:-2, 1:-1]) & (inner != labels[2:, 1:-1]) &
             (inner != labels[1:-1, :-2]) & (inner != labels[1:-1, 2:]))
    return float(alone.mean())


def compression_problem(labels: np.ndarray) -> str | None:
    """Why a label map looks lossily compressed, or None."""
    noise = isolated_fraction(labels)
    if noise > NOISE_LIMIT:
        return (f"{100 * noise:.1f}% of its pixels differ from all four neighbours: it looks lossily compressed "
                "(saved as JPEG?); class ids must be stored losslessly")
    return None


def compressed_labels(reader: ParsingReader, sample: int = COMPRESSION_SAMPLE) -> list[Path]:
    """The parsing labels, among up to ``sample`` spread over the split, that look lossily compressed."""
    paths = [r.parsing for r in reader.records if r.parsing is not None]
    step = max(1, len(paths) // sample)
    found = []
    for path in paths[::step][:sample]:
        try:
            if compression_problem(read_label(path).numpy()) is not None:
                found.append(path)
        except DataError:
            continue  # unreadable files are the header scan's to report
    return found


def missing_joints(joints: np.ndarray) -> np.ndarray:
    """[K, 3] (x, y, v) -> bool [K]: a joint is missing when a coordinate is nan or negative, that
    is, left of or above the image's first pixel, whose centre is 0 (LIP's files hold whole pixels,
    so a negative one is -1 or less). Within half a pixel of the edge a joint is still on the image."""
    xy = joints[:, :2]
    return ~np.isfinite(xy).all(axis=1) | (np.nan_to_num(xy, nan=-1.0) < -0.5).any(axis=1)


def visibility_problem(joints: np.ndarray) -> str | None:
    """Why the v values of a pose row are not usable, or None (missing joints are not looked at)."""
    v = joints[~missing_joints(joints), 2]
    bad = sorted({float(x) for x in v if float(x) not in VISIBILITY})
    if bad:
        return f"visibility values {bad} are not one of {', '.join(f'{x:g}' for x in VISIBILITY)}"
    return None


def outside_joints(joints: np.ndarray, hw: tuple[int, int]) -> list[int]:
    """Present joints that lie beyond the image's right or bottom edge (training treats them as missing)."""
    xy = joints[:, :2]
    present = ~missing_joints(joints)
    outside = present & ((xy[:, 0] > hw[1] - 0.5) | (xy[:, 1] > hw[0] - 0.5))
    return np.nonzero(outside)[0].tolist()


def split_problem(split: str, images: int) -> str | None:
    """A split that training reads must have images."""
    return f"split {split!r} has no images (training needs at least one)" if images == 0 else None
