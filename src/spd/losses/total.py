"""The multi-task loss L = λs·Ls + λp·Lp + λd·Ld summed over stages (and, with multi-scale
models, over the fused output and every scale, as JPPNet), each term logged on its own."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..model.outputs import ModelOutput, StageOutput
from ..ops.errors import InputError
from ..ops.validation import require_choice
from ..tasks import Targets, tasks_of
from ..tasks.registry import BUILT_IN
from ..tasks.grids import TARGET_RESIZES
from ..tasks.parsing import DENSE_AT

BALANCES = ("fixed", "uncertainty")
LOG_VAR_LIMIT = 5.0


@dataclass(frozen=True)
class LossConfig:
    parsing: float = 1.0        # λs
    pose: float = 1.0           # λp
    densepose: float = 1.0      # λd (applies to the part-index and the U, V terms alike)
    # Resolution of the parsing and part-index cross-entropy: "output" (labels resized to the
    # logits, JPPNet) or "input" (logits upsampled to the labels).
    dense_at: str = "output"
    # The part-index cross-entropy's resolution when it differs from ``dense_at`` (None: the same).
    # DensePose parts are wider than the thinnest garments; at "output" a cpu_spd step costs 11% less.
    # (The U, V loss is always at the output's resolution, the labels resized to it.)
    part_at: str | None = None
    # How labels and heatmaps reach a smaller grid: "centred" (the pixel under each cell's centre;
    # heatmaps bilinear) or "tf_legacy" (JPPNet: TF1's nearest neighbour, the top-left pixel).
    resize: str = "centred"
    # Class weights (pixel frequency in the training labels) ** -power of the parsing and of the
    # DensePose part-index cross-entropy; 0 (plain cross-entropy, as JPPNet) to 1 (inverse
    # frequency). Rare, small classes (gloves, sunglasses, shoes) are otherwise learned last.
    class_balance: float = 0.0
    part_balance: float = 0.0
    # How the tasks' losses are weighted: "fixed" (the weights above) or "uncertainty" (Kendall, Gal
    # and Cipolla, CVPR 2018: a learned log-variance s per task, total = sum exp(-s) * L + s, each s
    # starting at -log of the task's fixed weight and clamped to +-LOG_VAR_LIMIT).
    balance: str = "fixed"
    # λ of tasks other than the three above (a task registered by the user; see spd.tasks): its
    # name -> weight; a task not named here has its declared ``loss_weight`` (1.0).
    weights: dict[str, float] = field(default_factory=dict)

    RETIRED = {"uv_at": "the U, V loss at input resolution cost 10% more per step for no gain",
               "pose_mode": "the pose loss is JPPNet's per-image L2 (MSE trained no better)",
               "uv_weight": "the U, V term is weighted as the part index, by loss.densepose"}

    def __post_init__(self) -> None:
        require_choice("loss.balance", self.balance, BALANCES)
        for key in ("parsing", "pose", "densepose"):
            if not (getattr(self, key) >= 0):  # also refuses nan
                raise InputError(f"loss.{key} must be >= 0, got {getattr(self, key)!r}")
        for key, value in self.weights.items():
            if key in ("parsing", "pose", "densepose"):
                raise InputError(f"loss.weights.{key}: give the weight of {key} as loss.{key}")
            if not (value >= 0):
                raise InputError(f"loss.weights.{key} must be >= 0, got {value!r}")
        for key in ("class_balance", "part_balance"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise InputError(f"loss.{key} must be in [0, 1], got {getattr(self, key)!r}")
        require_choice("loss.resize", self.resize, TARGET_RESIZES)
        require_choice("loss.dense_at", self.dense_at, DENSE_AT)
        require_choice("loss.part_at", self.part_at, (*DENSE_AT, None))


@dataclass
class LossOutput:
    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)  # unweighted, summed over stages/scales


def stage_terms(out: StageOutput, batch: dict[str, torch.Tensor], config: LossConfig,
                class_weights: torch.Tensor | None = None, part_weights: torch.Tensor | None = None,
                targets: Targets | None = None) -> dict[str, torch.Tensor]:
    """The unweighted loss terms of one stage's outputs, task by task; ``targets``: the batch's
    targets prepared so far (a new set when None)."""
    targets = targets or Targets(batch, config)
    weights = {"class_weights": class_weights, "part_weights": part_weights}
    terms = {}
    for task in out.tasks():
        outputs = {o.name: out.get(o.name) for o in task.outputs}
        terms.update(task.loss(outputs, lambda size, task=task: targets.at(task, size), config, weights))
    return terms


class MultiTaskLoss(nn.Module):
    """``class_weights`` [C] / ``part_weights`` [25]: the parsing / part-index cross-entropy's class
    weights (``loss.class_balance`` / ``part_balance``; see
    :func:`spd.data.class_stats.balanced_weights`), None for plain cross-entropy. ``tasks``: the
    model's tasks (the learned log-variances of ``balance: uncertainty``, one per task)."""

    def __init__(self, config: LossConfig = LossConfig(), class_weights: torch.Tensor | None = None,
                 part_weights: torch.Tensor | None = None, tasks: tuple[str, ...] = BUILT_IN):
        super().__init__()
        self.config = config
        # Buffers, so that they follow the model to its device and are saved in training checkpoints.
        self.register_buffer("class_weights", class_weights, persistent=class_weights is not None)
        self.register_buffer("part_weights", part_weights, persistent=part_weights is not None)
        self.tasks = tuple(tasks)
        stray = sorted(set(config.weights) - set(self.tasks))
        if stray:  # a misspelt task would otherwise keep its default weight without a word
            raise InputError(f"loss.weights names {stray}, which are not tasks of this model (its tasks: "
                             f"{', '.join(self.tasks)})")
        if config.balance == "uncertainty":
            fixed = self.fixed_task_weights()
            start = [-math.log(max(fixed[t], math.exp(-LOG_VAR_LIMIT))) for t in self.tasks]
            self.log_vars = nn.Parameter(torch.tensor(start, dtype=torch.float32))
        else:
            self.log_vars = None

    def fixed_task_weights(self) -> dict[str, float]:
        """λ of each of the loss's tasks: ``loss.parsing`` / ``pose`` / ``densepose``, ``loss.weights``
        for other tasks, else the task's declared weight."""
        c = self.config
        named = {"parsing": c.parsing, "pose": c.pose, "densepose": c.densepose, **c.weights}
        return {t.name: named.get(t.name, t.loss_weight) for t in tasks_of(self.tasks)}

    def task_weights(self) -> dict[str, torch.Tensor | float]:
        """The current weight of each task: fixed, or exp(-s) of its clamped learned log-variance."""
        if self.log_vars is None:
            return {t: self.fixed_task_weights()[t] for t in self.tasks}
        return dict(zip(self.tasks, torch.exp(-self.log_vars.clamp(-LOG_VAR_LIMIT, LOG_VAR_LIMIT)).unbind()))

    def task_losses(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Unweighted loss of each task present in ``terms``: its terms summed."""
        return {t.name: sum(terms[n] for n in t.terms) for t in tasks_of(self.tasks) if t.terms[0] in terms}

    def forward(self, output: ModelOutput, batch: dict[str, torch.Tensor]) -> LossOutput:
        outputs = list(output.stages)
        for stages in output.scales.values():
            outputs += stages
        extra = {t.name for out in outputs for t in out.tasks()} - set(self.tasks)
        if extra:  # their terms would be computed and then left out of the total
            raise ValueError(f"the model outputs tasks {sorted(extra)} that this loss was not made for ({self.tasks})")
        terms: dict[str, torch.Tensor] = {}
        targets = Targets(batch, self.config)  # each task's targets made once per grid, for every stage and scale
        for out in outputs:
            for name, value in stage_terms(out, batch, self.config, self.class_weights, self.part_weights,
                                           targets).items():
                terms[name] = terms[name] + value if name in terms else value
        return LossOutput(total=self.combine(self.task_losses(terms)), terms=terms)

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted total of the tasks' losses (with the log-variance terms under ``uncertainty``)."""
        weights = self.task_weights()
        total = sum(weights[task] * value for task, value in losses.items())
        if self.log_vars is not None:
            s = self.log_vars.clamp(-LOG_VAR_LIMIT, LOG_VAR_LIMIT)
            total = total + sum(s[self.tasks.index(task)] for task in losses)
        return total
