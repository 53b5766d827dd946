"""Parameter counts per component, and FLOPs of one forward pass."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .spd_net import SPDNet


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_table(model: SPDNet) -> list[tuple[str, int]]:
    rows = [(f"trunk.{name}", count(module)) for name, module in model.trunk.named_children()]
    rows += [(f"initial.{task}", count(branch)) for task, branch in model.initial.items()]
    for i, stage in enumerate(model.refine):
        rows += [(f"refine{i + 1}.{task}", count(branch)) for task, branch in stage.items()]
    rows.append(("total", count(model)))
    return rows


def forward_flops(model: SPDNet, size: tuple[int, int], batch: int = 1) -> int:
    """FLOPs of one inference forward (a multiply-add counts 2), by torch's FLOP counter."""
    x = torch.zeros(batch, 3, *size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return counter.get_total_flops()
