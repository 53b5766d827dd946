"""``train.precision: auto``: train in bf16-mixed (and channels-last) where a training step is
faster so on this machine, in 32-true otherwise.

On a GPU with bf16, ``bf16-mixed``. On the CPU the answer depends on the machine: with AMX a
bf16 step of the demo's network ran 1.42x faster than float32 (channels-last, which AMX's kernels
want), while on CPUs without native bf16 it is emulated and tens of times slower. So on the CPU
``auto`` times one forward and backward of the run's own network (random weights, a stand-in
loss), at the crop size and up to two images, in each mode of
:data:`~spd.inference.precision.MODES`, with the rule and the per-machine cache of
:func:`~spd.inference.precision.measured_choice`. The run's saved config holds the answer
(``bf16-mixed`` or ``32-true``, and ``channels_last``), so that a resumed run keeps it.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from ..config import ExperimentConfig
from ..inference.precision import TIMED_RUNS, PrecisionChoice, measured_choice
from ..model import SPDNet

LIGHTNING = {"32": "32-true", "bf16": "bf16-mixed"}
TIMED_BATCH = 2  # images per timed step: enough to rank the modes, cheap for full-size models


def step_seconds(model: SPDNet, size: tuple[int, int], batch: int, precision: str, channels_last: bool,
                 runs: int = TIMED_RUNS) -> float:
    """The fastest of ``runs`` training steps' forward and backward (after an untimed one) of
    ``batch`` images at ``size`` (``model`` trains its gradients and batch statistics: pass a copy)."""
    model.train().to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    x = torch.zeros(batch, 3, *size)
    best = float("inf")
    for i in range(runs + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            outputs = model(x)
        loss = sum(v.float().mean() for stage in outputs.stages for v in stage.outputs.values())
        loss.backward()
        model.zero_grad(set_to_none=True)
        if i:
            best = min(best, time.perf_counter() - start)
    return best


def resolve_train_precision(config: ExperimentConfig, accelerator: str) -> tuple[ExperimentConfig, PrecisionChoice]:
    """``config`` with ``train.precision: auto`` replaced by what this machine trains fastest in
    (and ``train.channels_last`` set where that is part of it); any other precision as it was."""
    t = config.train
    if t.precision != "auto":
        return config, PrecisionChoice(t.precision, "as asked")
    if accelerator == "gpu":
        choice = (PrecisionChoice("bf16", "this GPU computes in bf16") if torch.cuda.is_bf16_supported()
                  else PrecisionChoice("32", "this GPU has no bf16"))
    else:
        size = tuple(config.augment.size)
        batch = min(config.data.batch_size, TIMED_BATCH)
        model = SPDNet(config.model)  # random weights: the time does not depend on them
        choice = measured_choice(model, ["train", list(size), batch], f"one training step of {batch} x {size[0]}x{size[1]}",
                                 lambda p, channels_last: step_seconds(model, size, batch, p, channels_last))
    train = replace(t, precision=LIGHTNING[choice.precision], channels_last=t.channels_last or choice.channels_last)
    return replace(config, train=train), choice
