"""Shared by tests/test_schp.py and tools/schp_reference.py (which made the golden file with SCHP's
own code): the random weights, network inputs and photos of the SCHP fidelity checks. numpy and
Pillow only."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 20261207
FIXTURES = Path(__file__).parent / "fixtures" / "schp"
# Network inputs (already normalised) of odd sizes: every align_corners resize inside is exercised.
INPUT_HW = ((97, 65), (64, 80))
# Crops (left, top, right, bottom) of SCHP's demo photo (MIT licence, its repository's demo/demo.jpg),
# scaled down: portrait, landscape and square photos of odd sizes.
PHOTOS = {"portrait": ((560, 0, 1440, 1333), (151, 229)), "landscape": ((0, 200, 2000, 1333), (301, 171)),
          "square": ((700, 150, 1300, 750), (97, 97))}


def _rng(name: str, seed: int) -> np.random.Generator:
    # One stream per tensor name: the same values whatever order the names come in.
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def draw_weights(shapes: dict[str, tuple[int, ...]], seed: int = SEED) -> dict[str, np.ndarray]:
    """SCHP state-dict name -> float32 array. Convolutions He-scaled; InPlaceABN scales drawn around
    zero (half of them negative, where InPlaceABN and a plain batch norm differ); the residual
    branches' last scales small, so that 33 blocks keep activations finite. Means and biases are
    tiny (but not zero, so that each is checked): larger ones give every pixel the same class,
    which would leave the label maps' check blind to where each pixel is read."""
    out = {}
    for name in sorted(shapes):
        shape, rng = shapes[name], _rng(name, seed)
        leaf = name.rsplit(".", 1)[-1]
        if len(shape) == 4:
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        elif leaf == "running_var":
            value = rng.uniform(0.5, 2.0, shape)
        elif leaf == "weight":  # InPlaceABN's scale (every 1-d weight of SCHP's network is one)
            last = ".bn3." in name or ".downsample.1." in name
            value = rng.standard_normal(shape) * (0.2 if last else 1.0)
        else:  # running_mean, InPlaceABN's and convolutions' biases
            value = rng.standard_normal(shape) * 1e-3
        out[name] = value.astype(np.float32)
    return out


def golden_input(index: int, seed: int = SEED) -> np.ndarray:
    """Network input ``index`` (NCHW [1, 3, H, W] float32)."""
    return np.random.default_rng([seed, 1000 + index]).standard_normal((1, 3, *INPUT_HW[index])).astype(np.float32)


def make_photos(demo_jpg: Path, out: Path) -> None:
    """The test photos (PNG, lossless) from SCHP's demo photo; committed under fixtures/schp."""
    out.mkdir(parents=True, exist_ok=True)
    with Image.open(demo_jpg) as im:
        for name, (box, size) in PHOTOS.items():
            im.convert("RGB").crop(box).resize(size, Image.Resampling.LANCZOS).save(out / f"{name}.png")


def photo_paths() -> list[Path]:
    return [FIXTURES / f"{name}.png" for name in PHOTOS]
