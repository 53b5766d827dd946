"""The files ``spd predict`` writes for one image, each written atomically:

* ``NAME_parsing.png``   class ids, palettised with the label space's colours (LIP tools' format)
* ``NAME_labels.png``    the same relabelled through ``--labels`` (ATR ids or a user's label set)
* ``NAME_keypoints.json`` the 16 joints as x, y, score triplets in original-image pixels
* ``NAME_iuv.png``        DensePose (I, 255 U, 255 V), full image
* ``NAME_overlay.jpg``    parsing blend + confident skeleton | DensePose colouring, with a legend
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..ops.arrays import as_numpy
from ..ops.atomic import write_text
from ..data.image_io import write_image, write_iuv, write_label
from ..labels import label_space
from ..labels.relabel import Relabel
from ..vis.overlay import overlay
from ..inference import Prediction

KINDS = ("parsing", "labels", "keypoints", "iuv", "overlay")
SUFFIX = {"parsing": "_parsing.png", "labels": "_labels.png", "keypoints": "_keypoints.json",
          "iuv": "_iuv.png", "overlay": "_overlay.jpg"}
VIDEO_SUFFIX = {"keypoints": "_keypoints.json", "overlay": "_overlay.mp4"}  # a video's outputs
TASK_OF = {"parsing": "parsing", "labels": "parsing", "keypoints": "pose", "iuv": "densepose"}


@dataclass(frozen=True)
class OutputSpec:
    kinds: tuple[str, ...]
    space: str                      # the model's parsing label space
    relabel: Relabel | None = None
    min_score: float = 0.2          # joints drawn in the overlay
    overlay_max_side: int = 2048    # larger overlays are drawn downscaled


def choose_kinds(requested: list[str] | None, tasks: tuple[str, ...], relabel: Relabel | None) -> tuple[str, ...]:
    """The requested kinds (all that the model's tasks allow when None). Asking for an output the
    model cannot make is an error."""
    if requested is None:
        return tuple(k for k in KINDS if TASK_OF.get(k, "parsing") in tasks and (k != "labels" or relabel))
    for kind in requested:
        if kind not in KINDS:
            raise ValueError(f"--outputs: unknown output {kind!r} (choose from {', '.join(KINDS)})")
        if TASK_OF.get(kind, "parsing") not in tasks:
            raise ValueError(f"--outputs {kind}: the model has no {TASK_OF[kind]} branch (its tasks: {', '.join(tasks)})")
        if kind == "labels" and relabel is None:
            raise ValueError("--outputs labels needs --labels (a built-in label set or a YAML file)")
    return tuple(dict.fromkeys(requested))


def output_paths(out_dir: Path, name: Path, kinds: tuple[str, ...], video: bool = False) -> dict[str, Path]:
    """The files of one input; a video has only an overlay video and a keypoints JSON."""
    suffix = VIDEO_SUFFIX if video else SUFFIX
    return {k: out_dir / f"{name}{suffix[k]}" for k in kinds if k in suffix}


def keypoints_record(prediction: Prediction) -> dict[str, Any]:
    """COCO results style: ``keypoints`` = [x1, y1, s1, x2, ...] in original-image pixels."""
    xy, scores = as_numpy(prediction.keypoints), as_numpy(prediction.keypoint_scores)
    triplets = np.concatenate([xy, scores[:, None]], axis=1)
    # JSON has no NaN or infinity: a value that is not a number is written as null.
    return {"joints": list(prediction.joints), "keypoints": [_number(v, 2) for v in triplets.reshape(-1)],
            "score": _number(scores.mean(), 4)}


def _number(value, digits: int) -> float | None:
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def keypoints_document(prediction: Prediction) -> dict[str, Any]:
    """The keypoints JSON of one image: its name and size, the joints, the settings used."""
    height, width = prediction.size
    return {"image": prediction.source, "width": width, "height": height, **keypoints_record(prediction),
            "settings": prediction.settings}


def _shrunk(image: np.ndarray, prediction: Prediction, max_side: int) -> tuple[np.ndarray, Prediction]:
    """A large image and its prediction scaled down for drawing (labels nearest, keypoints scaled)."""
    height, width = image.shape[:2]
    k = max_side / max(height, width)
    if k >= 1:
        return image, prediction
    size = (max(1, round(height * k)), max(1, round(width * k)))
    from PIL import Image
    small = np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.BILINEAR))

    def labels(t):
        return None if t is None else F.interpolate(t[None, None].float(), size=size, mode="nearest")[0, 0].to(t.dtype)

    uv = None if prediction.dp_uv is None else F.interpolate(prediction.dp_uv[None].float(), size=size, mode="nearest")[0]
    kp = None if prediction.keypoints is None else (prediction.keypoints + 0.5) * prediction.keypoints.new_tensor([size[1] / width, size[0] / height]) - 0.5
    return small, Prediction(parsing=labels(prediction.parsing), keypoints=kp, keypoint_scores=prediction.keypoint_scores,
                             dp_index=labels(prediction.dp_index), dp_uv=uv)


def write_outputs(prediction: Prediction, image: torch.Tensor, paths: dict[str, Path], spec: OutputSpec) -> None:
    """``image``: the uint8 RGB [3, H, W] input the prediction was made on (either on any device)."""
    prediction, image = prediction.to("cpu"), image.cpu()
    for kind, path in paths.items():
        if kind == "parsing":
            write_label(path, prediction.parsing, label_space(spec.space).palette_array())
        elif kind == "labels":
            write_label(path, spec.relabel.apply(prediction.parsing.numpy()), spec.relabel.palette)
        elif kind == "keypoints":
            write_text(path, json.dumps(keypoints_document(prediction), indent=1, allow_nan=False) + "\n")
        elif kind == "iuv":
            write_iuv(path, prediction.dp_index, prediction.dp_uv)
        elif kind == "overlay":
            rgb, small = _shrunk(image.permute(1, 2, 0).numpy(), prediction, spec.overlay_max_side)
            write_image(path, overlay(rgb, small, spec.space, spec.min_score))
