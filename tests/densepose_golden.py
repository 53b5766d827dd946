"""Shared by tests/test_densepose_rcnn.py and tools/densepose_reference.py (which made the golden file
with detectron2): the random weights and photos of the DensePose R-CNN fidelity check. numpy and
Pillow only."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 20261208
FIXTURES = Path(__file__).parent / "fixtures" / "densepose_rcnn"
DETECTIONS = 4          # detections per image kept (TEST.DETECTIONS_PER_IMAGE): the head costs 15 GFLOP each
UV_STEP = 3             # U, V compared at every third pixel of each box (the fixture stays small)
# Photos made from SCHP's demo photo (MIT licence): a landscape one, three people side by side
# (portrait crops, one mirrored), a small odd-sized one. JPEG: both sides decode the same bytes
# with Pillow.
PHOTOS = ("landscape.jpg", "three.jpg", "small.jpg")


# Layers scaled down: the stem sees pixels of about +-128 (not unit inputs), and the RPN and box
# predictors' outputs must stay in the range where proposals, scores and boxes vary.
_SCALE = {"backbone.bottom_up.stem.conv1": 1 / 64, "proposal_generator.rpn_head.objectness_logits": 0.1,
          "proposal_generator.rpn_head.anchor_deltas": 0.05, "roi_heads.box_predictor.cls_score": 0.3,
          "roi_heads.box_predictor.bbox_pred": 0.05,
          # U and V of a trained model lie in [0, 1]: about that range, so that 1e-4 means what it says.
          "roi_heads.densepose_predictor.u_lowres": 0.1, "roi_heads.densepose_predictor.v_lowres": 0.1}


def _rng(name: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def draw_weights(shapes: dict[str, tuple[int, ...]], seed: int = SEED) -> dict[str, np.ndarray]:
    """detectron2 name -> float32 array. Convolutions and linear layers He-scaled; frozen batch
    norm near identity (the residual branches' last scale small); biases small."""
    out = {}
    for name in sorted(shapes):
        shape, rng = shapes[name], _rng(name, seed)
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "weight" and len(shape) >= 2:
            # A transposed conv's weight is [in, out, k, k]; stride 2 spreads each input over 4 outputs.
            fan_in = int(np.prod(shape[1:])) if "_lowres." not in name else int(shape[0] * np.prod(shape[2:]) // 4)
            value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        elif ".norm." in name and leaf == "weight":
            value = rng.uniform(0.5, 1.5, shape) * (0.2 if ".conv3." in name else 1.0)
        elif leaf == "running_var":
            value = rng.uniform(0.5, 2.0, shape)
        else:  # norm biases, running means, conv and linear biases
            value = rng.standard_normal(shape) * 0.05
        out[name] = (value * _SCALE.get(name.rsplit(".", 1)[0], 1.0)).astype(np.float32)
    return out


def make_photos(demo_jpg: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with Image.open(demo_jpg) as im:
        im = im.convert("RGB")
        im.resize((400, 267), Image.Resampling.LANCZOS).save(out / "landscape.jpg", quality=90)
        person = im.crop((560, 0, 1440, 1333)).resize((120, 182), Image.Resampling.LANCZOS)
        three = Image.new("RGB", (360, 182), (200, 200, 200))
        for i, p in enumerate((person, person.transpose(Image.Transpose.FLIP_LEFT_RIGHT), person)):
            three.paste(p, (i * 120, 0))
        three.save(out / "three.jpg", quality=90)
        im.crop((300, 100, 1700, 1333)).resize((181, 97), Image.Resampling.LANCZOS).save(out / "small.jpg", quality=90)


def photo_paths() -> list[Path]:
    return [FIXTURES / name for name in PHOTOS]
