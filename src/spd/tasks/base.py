"""What a task is. A task (parsing, pose, DensePose, or one a user adds) declares, once, everything
that the model, the loss, test time, export, the writers, the metrics and the reports need to know
about it: its head's output channels and their split into named outputs, how stages and the
mirror view fuse, how its targets reach a prediction's grid and its loss, how it is decoded at
the photo's size, scored, exported, written and reported. Those layers read the task list; none
holds a table of tasks.

A task is a :class:`Task` subclass instance registered under its name (:mod:`.registry`).

Arguments typed by name only (the layer rule keeps this package below the ones that define them):
``model_config`` is a :class:`spd.model.ModelConfig`, ``loss_config`` a
:class:`spd.losses.LossConfig`, ``protocol`` an :class:`spd.inference.EvalConfig`, ``prediction`` an
:class:`spd.inference.Prediction`, a map source an :class:`spd.inference.resized.ResizedSum`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..ops.argmax import channel_argmax

STAGE_RULES = ("mean", "final")
JPPNET_HEADS = ("fc1_human", "pose_net")
PYRAMID_RESIZES = ("bilinear", "nearest")


@dataclass(frozen=True)
class Output:
    """One named output of a task's head, as :class:`spd.model.StageOutput` holds it.

    ``stages``: how a forward pass's stages become one output at test time: ``"mean"`` of the
    logits over the chosen stages, or ``"final"`` (the final stage's: heatmaps and U, V, which
    earlier stages make cruder). ``description``: its shape and meaning, as export records it
    (test time and export treat every output as [B, C, h, w], extra dimensions folded into C).
    """

    name: str
    stages: str
    description: str


@dataclass(frozen=True)
class Writer:
    """A file ``spd predict`` can write for one image: ``NAME{suffix}``, written by
    ``write(path, prediction, spec)`` (``spec``: :class:`spd.predict.writers.OutputSpec`)."""

    suffix: str
    write: Callable[[Path, Any, Any], None]
    needs_relabel: bool = False    # only with ``--labels`` (a label set to map the classes to)
    needs_mask: bool = False       # only with ``--mask`` (the classes of a binary mask)
    label: str = ""                # what the web page's download link says (default: the kind)


@dataclass(frozen=True)
class Column:
    """A column of ``spd report``'s comparison table: ``header``, the value at ``path`` inside the
    task's section of a result's JSON, printed with ``digits``."""

    header: str
    path: tuple[str, ...]
    digits: int = 2

    def value(self, section: dict | None) -> float | None:
        value: Any = section or {}
        for key in self.path:
            value = value.get(key) if isinstance(value, dict) else None
        return value


@dataclass(frozen=True)
class Scoring:
    """What a task's metric needs to know of an evaluation: the model's and the data's parsing label
    spaces, the cross-dataset mapping (a :class:`spd.labels.LabelMapping`, or None), whether the
    data has keypoints, and what the DensePose ground truth is."""

    model_space: str
    data_space: str
    mapping: Any = None
    has_pose: bool = True
    densepose_truth: str = "synthetic ground truth"


class TaskMetric:
    """A task's metric over an evaluation: ``update`` per image, ``result`` at the end (None when
    no image had a target), its torchmetrics states in ``states`` (summed over processes)."""

    states: tuple = ()

    def update(self, prediction, targets: dict[str, Any], here: Callable[[torch.Tensor], torch.Tensor]) -> None:
        raise NotImplementedError

    def result(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def counted(self) -> bool:
        """Whether any image was scored (in a distributed run every process computes, so that the
        collective reductions of torchmetrics meet)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return True
        return any(int(t.sum()) > 0 for t in self.count_tensors())

    def count_tensors(self) -> list[torch.Tensor]:
        raise NotImplementedError


class Targets:
    """One batch's targets, prepared once per task and output grid (a training step asks for the
    same grid for every stage, and for each input scale's grid): ``at(task, size)`` returns the
    task's :meth:`Task.targets` at ``size`` (None: the labels' own resolution), computed the first
    time and then reused."""

    def __init__(self, batch: dict[str, torch.Tensor], loss_config):
        self.batch, self.config = batch, loss_config
        self._cache: dict[tuple[str, tuple[int, int] | None], dict[str, torch.Tensor]] = {}

    def at(self, task: "Task", size: tuple[int, int] | None) -> dict[str, torch.Tensor]:
        key = (task.name, None if size is None else tuple(size))
        if key not in self._cache:
            self._cache[key] = task.targets(self.batch, key[1], self.config)
        return self._cache[key]


class Task:
    """The base of every task; subclasses set the class attributes and override what differs.

    Class attributes:

    * ``name``: the task's name in ``model.tasks``, ``model.feeds`` and the loss weights.
    * ``outputs``: the named outputs its head's raw tensor splits into (:meth:`split`).
    * ``terms``: the names of its loss terms (logged as ``train/<term>``).
    * ``jppnet_head``: the head the dilated family builds (``"fc1_human"``: JPPNet's parsing head,
      reading res5; ``"pose_net"``: JPPNet's pose head, reading res4).
    * ``pyramid_resize``: how the training pyramid brings a smaller scale's raw output to the full
      scale's grid (``"bilinear"``, TF1's legacy; ``"nearest"`` for heatmaps, as JPPNet).
    * ``writers``: the files ``spd predict`` can write of it, by kind.
    * ``columns``: its columns in ``spd report``.
    * ``loss_weight``: its λ when ``loss`` names no weight for it.
    """

    name: str = ""
    outputs: tuple[Output, ...] = ()
    terms: tuple[str, ...] = ()
    jppnet_head: str = "pose_net"
    pyramid_resize: str = "bilinear"
    writers: dict[str, Writer] = {}
    columns: tuple[Column, ...] = ()
    loss_weight: float = 1.0

    # --- the model ---------------------------------------------------------------------------
    def channels(self, model_config) -> int:
        """Output channels of the task's head."""
        raise NotImplementedError

    def split(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """The head's raw [B, channels, h, w] -> its named outputs (by default one: itself)."""
        return {self.outputs[0].name: raw}

    # --- training ----------------------------------------------------------------------------
    def targets(self, batch: dict[str, torch.Tensor], size: tuple[int, int] | None, loss_config) -> dict[str, torch.Tensor]:
        """The batch's targets of this task at ``size`` (None: the labels' resolution), resized by
        ``loss_config.resize`` (one policy for every term of the task)."""
        raise NotImplementedError

    def loss(self, outputs: dict[str, torch.Tensor], targets: Callable[[tuple[int, int] | None], dict[str, torch.Tensor]],
             loss_config, weights: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor]:
        """One stage's outputs of this task -> its unweighted loss terms. ``targets(size)`` gives the
        prepared targets at a grid (see :class:`Targets`); ``weights``: the loss's class-weight
        buffers by name (None where unused)."""
        raise NotImplementedError

    # --- test time ---------------------------------------------------------------------------
    def flip_permutation(self, output: str, model_config) -> tuple[int, ...] | None:
        """``perm[c]``: the channel that ``c`` becomes in the mirrored image; None for an output that
        has no mirror (it is then read from the un-mirrored view only)."""
        return None

    def kernel(self, output: str, protocol) -> str:
        """How ``output`` is resized to the photo: ``bilinear``, TF1's ``tf_bilinear`` / ``tf_nearest``,
        or SCHP's ``affine`` (see :class:`~spd.inference.resized.ResizedSum`)."""
        return {"tf_legacy": "tf_bilinear", "align_corners": "affine"}.get(protocol.interpolation, "bilinear")

    def kept_apart(self, output: str, protocol) -> bool:
        """Whether the mirror view's map is resized before it is added (TF1's legacy resizes are
        not mirror-symmetric, and JPPNet flips the mirror's output back at full size)."""
        return protocol.flip and protocol.interpolation == "tf_legacy"

    def decode(self, maps: dict[str, Any], protocol, return_probs: bool) -> dict[str, torch.Tensor]:
        """The task's outputs resized to the photo (map sources with ``bands``, ``rows``, ``at``) ->
        prediction values by field name (a field of :class:`~spd.inference.Prediction`, or a name
        of its own, kept in ``Prediction.extra``)."""
        raise NotImplementedError

    # --- evaluation --------------------------------------------------------------------------
    def metric(self, scoring: Scoring) -> TaskMetric | None:
        """The task's metric on this evaluation, or None where the data cannot score it."""
        return None

    def markdown(self, result: dict[str, Any]) -> list[str]:
        """Lines of ``metrics.md`` for the task's result."""
        return []

    def logged(self, result: dict[str, Any]) -> dict[str, float]:
        """The values validation logs (``val/...``) from the task's result."""
        return {}

    def __repr__(self) -> str:
        return f"<task {self.name}>"


def argmax_labels(source) -> torch.Tensor:
    """uint8 [H, W]: the channel of the largest value of a map source, band by band (a source
    that computes its labels itself, :meth:`spd.inference.resized.ResizedSum.labels`, does)."""
    if hasattr(source, "labels"):
        return source.labels()
    first = source.maps[0]
    out = torch.empty(source.height, source.width, dtype=torch.uint8, device=first.device)
    for a, b in source.bands():
        out[a:b] = channel_argmax(source.rows(a, b)).to(torch.uint8)
    return out


def probabilities(source) -> torch.Tensor:
    """float32 [C, H, W]: the softmax over channels, band by band."""
    return torch.cat([source.rows(a, b).softmax(0) for a, b in source.bands()], dim=1)
