"""Typed model outputs, and how one forward pass's stages become one output at test time."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..ops.errors import UnknownName
from ..ops.validation import require_choice
from ..tasks import get_task, output_owner


class StageOutput:
    """One stage's predictions: each output of the model's tasks by name (see :mod:`spd.tasks`).
    The built-in ones:

    parsing:  [B, C, h, w] logits
    pose:     [B, K, h, w] heatmaps
    dp_index: [B, 25, h, w] DensePose part logits (0 = background)
    dp_uv:    [B, 2, 24, h, w] U and V of each part (channel p-1 for part p), in [0, 1]

    An output of a registered task reads as an attribute (``stage.parsing``); None where the model
    lacks that task.
    """

    def __init__(self, outputs: dict[str, torch.Tensor] | None = None, **named: torch.Tensor | None):
        self.outputs = {k: v for k, v in {**(outputs or {}), **named}.items() if v is not None}
        unknown = [k for k in self.outputs if output_owner(k) is None]
        if unknown:
            raise UnknownName(f"StageOutput: no registered task declares the outputs {unknown}")

    def __getattr__(self, name: str) -> torch.Tensor | None:
        if name == "outputs":  # not set yet (copy, unpickling)
            raise AttributeError(name)
        if name in self.outputs:
            return self.outputs[name]
        if output_owner(name) is not None:
            return None
        raise AttributeError(f"StageOutput has no output {name!r} (no registered task declares it)")

    def get(self, name: str) -> torch.Tensor | None:
        return self.outputs.get(name)

    def tasks(self) -> list:
        """The tasks (:class:`spd.tasks.Task`) whose outputs this stage holds, in their order."""
        return list(dict.fromkeys(output_owner(name) for name in self.outputs))

    @classmethod
    def from_raw(cls, raw: dict[str, torch.Tensor]) -> "StageOutput":
        """The heads' raw tensors by task -> the tasks' named outputs (:meth:`Task.split`)."""
        out: dict[str, torch.Tensor] = {}
        for task, tensor in raw.items():
            out.update(get_task(task).split(tensor))
        return cls(out)

    def __repr__(self) -> str:
        return "StageOutput(" + ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.outputs.items()) + ")"


@dataclass
class ModelOutput:
    """``stages[i]``: stage i (0 = initial), fused over input scales. ``scales[s][i]``: the same
    at input scale ``s``, present only when the model runs at more than one scale."""

    stages: list[StageOutput]
    scales: dict[float, list[StageOutput]] = field(default_factory=dict)

    @property
    def final(self) -> StageOutput:
        return self.stages[-1]


STAGE_CHOICES = ("all", "final")


def fuse_stages(stages: list[StageOutput], which: str = "all") -> StageOutput:
    """The test-time output of one forward pass: each output declared ``stages="mean"`` (logits:
    parsing, the part index) averaged over the chosen stages (``"all"``, as JPPNet's evaluation,
    or ``"final"``), float32; the others (heatmaps, U, V) from the final stage, whose are the best.
    The Predictor, evaluation and export all fuse through here."""
    require_choice("stages", which, STAGE_CHOICES)
    chosen = stages if which == "all" else stages[-1:]
    fused = {}
    for name, value in stages[-1].outputs.items():
        rule = next(o.stages for o in output_owner(name).outputs if o.name == name)
        fused[name] = torch.stack([s.outputs[name] for s in chosen]).float().mean(0) if rule == "mean" else value
    return StageOutput(fused)
