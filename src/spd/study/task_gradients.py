"""How the tasks pull on the shared trunk: every ``every`` steps, the cosine between the parsing
loss's gradient and each other task's gradient with respect to the trunk's parameters, and each
task's gradient norm. Negative cosines mean the tasks interfere; near zero, they ignore each other.

The gradients are taken from the training step's own forward pass (before its backward), with
``torch.autograd.grad``, which leaves the parameters' ``.grad`` and the batch-norm statistics
untouched: a run with this callback trains exactly as one without it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
import torch

from ..ops.errors import InputError

log = logging.getLogger(__name__)


def gradient_cosines(task_losses: dict[str, torch.Tensor], params: list[torch.nn.Parameter],
                     reference: str = "parsing") -> dict[str, float]:
    """``{"norm/<task>": |g_task|, "cos/<task>": cos(g_reference, g_task)}`` over ``params``. A cosine
    with a zero gradient (a batch without that task's labels, as with scarce parsing labels) is
    undefined and left out, rather than written as 0, which would read as "the tasks ignore each other"."""
    grads = {}
    for task, loss in task_losses.items():
        g = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        grads[task] = torch.cat([(x if x is not None else torch.zeros_like(p)).flatten().float()
                                 for x, p in zip(g, params)])
    out = {f"norm/{t}": float(g.norm()) for t, g in grads.items()}
    if reference in grads:
        for task, g in grads.items():
            if task != reference and out[f"norm/{task}"] > 0 and out[f"norm/{reference}"] > 0:
                cos = torch.nn.functional.cosine_similarity(grads[reference], g, dim=0, eps=1e-12)
                out[f"cos/{task}"] = float(cos)
    return out


class TaskGradientCosine(L.Callback):
    """Writes one JSON line per measured step to ``path`` (default ``RUN/task_gradients.jsonl``):
    ``{"step", "norm/<task>", "cos/<task>"}``, the tasks' losses weighted as the total weights them.
    Single-process runs only (under DDP every rank would measure its own shard)."""

    def __init__(self, every: int = 250, path: Path | str | None = None):
        if every < 1:
            raise InputError(f"every must be >= 1, got {every}")
        self.every, self.path = every, Path(path) if path is not None else None

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        step = trainer.global_step
        if step % self.every or trainer.world_size > 1 or pl_module.last_loss is None:
            return
        criterion = pl_module.criterion
        losses = criterion.task_losses(pl_module.last_loss.terms)
        if len(losses) < 2:
            return
        weights = criterion.task_weights()
        weighted = {t: weights[t] * v for t, v in losses.items()}
        params = [p for p in pl_module.model.trunk.parameters() if p.requires_grad]
        record = {"step": step, **gradient_cosines(weighted, params)}
        path = self.path or Path(trainer.default_root_dir) / "task_gradients.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def read_task_gradients(path: Path | str) -> list[dict]:
    """The records of a run, one per step (a resumed run may have measured a step twice: the later wins)."""
    records: dict[int, dict] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            records[int(record["step"])] = record
    return [records[k] for k in sorted(records)]
