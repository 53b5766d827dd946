"""The demo's training step on the CPU: its FLOPs (forward and backward, counted by
``torch.utils.flop_counter``), its time and GFLOP/s in float32, channels-last, and bf16 autocast
(of the whole step, and of the trunk only), and the share of the time each kind of operation takes
(``torch.profiler``).

    python benchmarks/bench_train_step.py [--repeat 10] [--out benchmarks/results_train_step_cpu]

The step is ``spd demo``'s: ``cpu_spd``, batch 4 of 160 x 128 crops from synthetic domain A, its
multi-task loss and AdamW. Random weights; the best of ``--repeat`` steps after three warm-up ones.
Writes OUT.json and OUT.md, naming the CPU and whether it computes bf16 natively.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see spd/cli/__init__.py

import torch
from torch.utils.flop_counter import FlopCounterMode

from spd.config import load_config
from spd.data.synthetic import SynthSpec, generate
from spd.training.datamodule import SPDDataModule
from spd.training.module import SPDModule

from bench_common import machine, write_results  # benchmarks/, beside this script

MODES = ("fp32", "channels_last", "bf16", "bf16_channels_last", "bf16_trunk", "bf16_trunk_channels_last")


def demo_step(root: Path, mode: str):
    config, doc = load_demo(root)
    torch.manual_seed(0)
    module = SPDModule(doc, initialise=False).train()
    channels_last = mode.endswith("channels_last")
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    loader = SPDDataModule(config, module.model.output_stride).train_dataloader()
    batches = [{k: v for k, v in b.items() if isinstance(v, torch.Tensor)} for _, b in zip(range(2), loader)]
    optimiser = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-6)
    index = [0]
    trunk = module.model.trunk
    if mode.startswith("bf16_trunk"):  # autocast around the trunk only; heads and loss in float32
        forward = trunk.forward

        def autocast_trunk(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                maps = forward(x)
            return {k: v.float() for k, v in maps.items()}
        trunk.forward = autocast_trunk

    def step():
        b = batches[index[0] % len(batches)]
        index[0] += 1
        image = b["image"].contiguous(memory_format=torch.channels_last) if channels_last else b["image"]
        context = torch.autocast("cpu", dtype=torch.bfloat16) if mode in ("bf16", "bf16_channels_last") else contextlib.nullcontext()
        with context:
            loss = module.criterion(module(image), b).total
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return step


def load_demo(root: Path):
    from importlib import resources

    demo = resources.files("spd.config").joinpath("demo.yaml")
    with resources.as_file(demo) as path:
        return load_config(path, [f"data.root={root}", "data.num_workers=0", "data.synthetic=null"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results_train_step_cpu"))
    args = parser.parse_args()
    root = Path(os.environ.get("TMPDIR", "/tmp")) / "spd_bench_train_step"
    if not (root / "synthetic.yaml").exists():
        generate(root, SynthSpec(num=16, domain="A", seed=0, size=160, val_fraction=0.25))
    step = demo_step(root, "fp32")
    with FlopCounterMode(display=False) as counter:
        step()
    gflop = counter.get_total_flops() / 1e9
    rows = {}
    for mode in MODES:
        step = demo_step(root, mode)
        for _ in range(3):
            step()
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - start)
        rows[mode] = {"step_s": round(best, 4), "gflop_per_s": round(gflop / best, 1)}
        print(mode, rows[mode], flush=True)
    step = demo_step(root, "fp32")
    for _ in range(2):
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    top = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
    shares = {e.key: round(100 * e.self_cpu_time_total / total, 1) for e in top}
    record = {**machine(), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "step_gflop": round(gflop, 2), "modes": rows, "fp32_self_cpu_share_percent": shares}
    lines = [f"The demo's training step (cpu_spd, batch 4, 160 x 128, AdamW) on {record['cpu']} ({record['threads']} "
             f"threads; native bf16: {', '.join(record['native_bf16']) or 'no'}): {gflop:.2f} GFLOP forward + backward, best of "
             f"{args.repeat}", "", "| mode | s / step | GFLOP/s |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['step_s']} | {v['gflop_per_s']} |" for k, v in rows.items()]
    lines += ["", "float32 step, self CPU time by operation: " + ", ".join(f"{k} {v}%" for k, v in shares.items())]
    write_results(args.out, record, lines)


if __name__ == "__main__":
    main()
