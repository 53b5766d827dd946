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

from dataclasses import replace
from pathlib import Path

import torch

from ..config import ExperimentConfig
from ..inference.precision import MODES, TIMED_RUNS, PrecisionChoice, fastest_of, in_layout, measured_choice
from ..model import SPDNet
from ..ops.errors import InputError

LIGHTNING = {"32": "32-true", "bf16": "bf16-mixed"}
TIMED_BATCH = 2  # images per timed step: enough to rank the modes, cheap for full-size models


def step_seconds(model: SPDNet, size: tuple[int, int], batch: int, precision: str, channels_last: bool,
                 runs: int = TIMED_RUNS) -> float:
    """The fastest of ``runs`` training steps' forward and backward (after an untimed one) of
    ``batch`` images at ``size`` (``model`` trains its gradients and batch statistics: pass a copy)."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.zeros(batch, 3, *size).contiguous(memory_format=layout)  # as training hands it over

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            outputs = model(x)
        loss = sum(v.float().mean() for stage in outputs.stages for v in stage.outputs.values())
        loss.backward()
        model.zero_grad(set_to_none=True)

    with in_layout(model.train(), channels_last):
        return fastest_of(step, runs)


def saved_choice(checkpoint: Path) -> PrecisionChoice | None:
    """What a run that ``checkpoint`` continues trained in, from the config saved inside it."""
    try:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
        train = saved["hyper_parameters"]["config"]["train"]
        precision = {v: k for k, v in LIGHTNING.items()}[train["precision"]]
    except (OSError, RuntimeError, KeyError, TypeError, ValueError):
        return None  # resume itself reports a checkpoint it cannot read
    return PrecisionChoice(precision, f"the resumed run's ({checkpoint})", channels_last=bool(train.get("channels_last")))


def resolve_train_precision(config: ExperimentConfig, accelerator: str, resume_from: Path | None = None,
                            processes: int = 1) -> tuple[ExperimentConfig, PrecisionChoice]:
    """``config`` with ``train.precision: auto`` replaced by what this machine trains fastest in
    (and ``train.channels_last`` set where that is part of it); any other precision as it was. A
    resumed run (``resume_from``: its checkpoint) keeps what it trained in. On the CPU, ``auto``
    is refused for more than one process: each would time on its own, with the others running."""
    t = config.train
    if t.precision != "auto":
        return config, PrecisionChoice(t.precision, "as asked")
    choice = (saved_choice(resume_from) if resume_from is not None else None) or decide(config, accelerator, processes)
    train = replace(t, precision=LIGHTNING[choice.precision], channels_last=t.channels_last or choice.channels_last)
    return replace(config, train=train), choice


def decide(config: ExperimentConfig, accelerator: str, processes: int) -> PrecisionChoice:
    """``auto``'s answer for a new run (see :func:`resolve_train_precision`)."""
    if accelerator == "gpu":
        return (PrecisionChoice("bf16", "this GPU computes in bf16") if torch.cuda.is_bf16_supported()
                else PrecisionChoice("32", "this GPU has no bf16"))
    if processes > 1:
        raise InputError(f"train.precision auto times one process's training step; with {processes} processes on the "
                         "CPU they would time each other: run one process with auto first (the log names its choice), "
                         "or give bf16-mixed or 32-true")
    size = tuple(config.augment.size)
    batch = min(config.data.batch_size, TIMED_BATCH)
    model = SPDNet(config.model)  # random weights: the time does not depend on them
    # Weights the user asked to be channels-last are timed only so.
    modes = tuple(m for m in MODES if m[1]) if config.train.channels_last else MODES
    return measured_choice(model, ["train", list(size), batch], f"one training step of {batch} x {size[0]}x{size[1]}",
                           lambda p, channels_last: step_seconds(model, size, batch, p, channels_last), modes)
