"""The files ``spd predict`` writes for one image, each written atomically. Each task declares its
own (:attr:`spd.tasks.Task.writers`); the built-in ones:

* ``NAME_parsing.png``   class ids, palettised with the label space's colours (LIP tools' format)
* ``NAME_labels.png``    the same relabelled through ``--labels`` (ATR ids or a user's label set)
* ``NAME_mask.png``      0 / 255: the pixels of the ``--mask`` classes (try-on's garment region)
* ``NAME_keypoints.json`` the 16 joints as x, y, score triplets in original-image pixels
* ``NAME_iuv.png``        DensePose (I, 255 U, 255 V), full image

and, whatever the tasks, ``NAME_overlay.jpg``: parsing blend + confident skeleton | DensePose
colouring, with a legend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.image_io import write_image
from ..labels.masks import MaskSpec
from ..labels.relabel import Relabel
from ..ops.errors import InputError
from ..tasks import get_task, task_names
from ..tasks.pose import keypoints_document, keypoints_record  # noqa: F401 (the writers' API, as before)
from ..vis.overlay import overlay
from ..inference import Prediction

OVERLAY = "overlay"
VIDEO_SUFFIX = {"keypoints": "_keypoints.json", "overlay": "_overlay.mp4"}  # a video's outputs


def kinds_of(tasks: tuple[str, ...]) -> dict[str, tuple[str, object]]:
    """Every kind of file the given tasks can write: kind -> (task, its Writer)."""
    return {kind: (t, writer) for t in tasks for kind, writer in get_task(t).writers.items()}


def all_kinds() -> tuple[str, ...]:
    """Every kind of file ``spd predict`` writes, of all registered tasks."""
    return (*kinds_of(task_names()), OVERLAY)


@dataclass(frozen=True)
class OutputSpec:
    kinds: tuple[str, ...]
    space: str | None               # the model's parsing label space (None: it predicts no parsing)
    relabel: Relabel | None = None
    min_score: float = 0.2          # joints drawn in the overlay
    overlay_max_side: int = 2048    # larger overlays are drawn downscaled
    mask: MaskSpec | None = None


def choose_kinds(requested: list[str] | None, tasks: tuple[str, ...], relabel: Relabel | None,
                 mask: MaskSpec | None = None) -> tuple[str, ...]:
    """The requested kinds (all that the model's tasks allow when None). Asking for an output the
    model cannot make is an error."""
    own = kinds_of(tasks)
    if requested is None:
        return tuple(k for k, (_, w) in own.items() if (relabel or not w.needs_relabel) and (mask or not w.needs_mask)
                     ) + (OVERLAY,)
    every, known = kinds_of(task_names()), all_kinds()
    for kind in requested:
        if kind not in known:
            raise InputError(f"--outputs: unknown output {kind!r} (choose from {', '.join(known)})")
        if kind != OVERLAY and kind not in own:
            raise InputError(f"--outputs {kind}: the model has no {every[kind][0]} branch (its tasks: {', '.join(tasks)})")
        if kind != OVERLAY and own[kind][1].needs_relabel and relabel is None:
            raise InputError(f"--outputs {kind} needs --labels (a built-in label set or a YAML file)")
        if kind != OVERLAY and own[kind][1].needs_mask and mask is None:
            raise InputError(f"--outputs {kind} needs --mask (class names or a set name)")
    return tuple(dict.fromkeys(requested))


def output_paths(out_dir: Path, name: Path, kinds: tuple[str, ...], video: bool = False) -> dict[str, Path]:
    """The files of one input. A video has an overlay video, a keypoints JSON (every frame's) and,
    for each kind of image file, a folder ``NAME_<kind>/`` of one file per frame (``000000.png``...)."""
    if video:
        return {k: out_dir / (f"{name}{VIDEO_SUFFIX[k]}" if k in VIDEO_SUFFIX else f"{name}_{k}") for k in kinds}
    every = kinds_of(task_names())
    suffix = {**{k: w.suffix for k, (_, w) in every.items()}, OVERLAY: "_overlay.jpg"}
    return {k: out_dir / f"{name}{suffix[k]}" for k in kinds if k in suffix}


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


def frame_file(folder: Path, kind: str, frame: int) -> Path:
    """Frame ``frame``'s file of a video's ``kind`` folder: ``000123.png``, the writer's file type."""
    return folder / f"{frame:06d}{Path(kinds_of(task_names())[kind][1].suffix).suffix}"


def write_outputs(prediction: Prediction, image: torch.Tensor, paths: dict[str, Path], spec: OutputSpec) -> None:
    """``image``: the uint8 RGB [3, H, W] input the prediction was made on (either on any device)."""
    prediction, image = prediction.to("cpu"), image.cpu()
    every = kinds_of(task_names())
    for kind, path in paths.items():
        if kind == OVERLAY:
            rgb, small = _shrunk(image.permute(1, 2, 0).numpy(), prediction, spec.overlay_max_side)
            write_image(path, overlay(rgb, small, spec.space, spec.min_score))
        else:
            every[kind][1].write(path, prediction, spec)
