"""GPU memory of one training step per preset, per-device batch and precision, estimated without a GPU.

    python benchmarks/bench_memory.py --out benchmarks/results_memory_estimate       # the table in docs/training.md
    python benchmarks/bench_memory.py --presets cpu_s --batches 1 --size 64 --out /tmp/m   # a smoke run

The step is the one ``spd train`` runs with the LIP / ATR recipe (``configs/lip_<preset>.yaml``:
384-px crops, the preset's training scales, the multi-task loss, SGD with momentum and weight
decay, multi-tensor updates as on CUDA), twice, so that the second step holds the momentum
buffers. It runs on fake tensors (torch's ``FakeTensorMode``: shapes and dtypes, no data, no
arithmetic, a few seconds per row on a CPU) while :class:`LiveTensorBytes` adds up the bytes of
every live tensor storage: parameters, buffers, the batch, activations, gradients, optimiser
state and temporaries, each rounded up to 512 bytes as CUDA's caching allocator rounds a block.

What it counts is what ``torch.cuda.max_memory_allocated`` reports. Not counted: the CUDA context
(0.3-0.6 GiB, seen in ``nvidia-smi`` only), cuDNN / cuBLAS workspaces (with ``cudnn.benchmark``
cuDNN may pick algorithms that ask for hundreds of MiB) and the caching allocator's
fragmentation; under DDP, its gradient buckets (one more float32 copy of the gradients). ``bf16-mixed``
is Lightning's autocast on the CPU, whose cast lists give the ops this network runs on bf16
tensors the types CUDA's give them, except ``sum`` (float32 on CUDA; here only over four
output-stride-8 maps in the heads, a few MiB); the losses cast to float32 themselves. So read the
numbers as a lower bound that is close for the big terms, and leave 1-2 GiB beside them;
``benchmarks/gpu_check.sh`` puts the estimate beside the measured peak on a real card.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
import weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from bench_speed import experiment, synthetic_root  # noqa: F401  (benchmarks/, beside this script)

from spd.ops.atomic import write_text

BLOCK = 512  # CUDA's caching allocator hands out multiples of 512 bytes
PRESETS = ("jppnet", "s", "sp", "sd", "spd", "cpu_spd")
PRECISIONS = ("bf16-mixed", "32-true")


def rounded(nbytes: int, block: int = BLOCK) -> int:
    return -(-nbytes // block) * block


class LiveTensorBytes(TorchDispatchMode):
    """Bytes of the tensor storages alive while it is active: ``current`` and ``peak``.

    Every storage an operation returns is counted once (views and in-place results share it)
    until its last reference goes; tensors made before the mode are counted when passed to
    :meth:`track`. Storage objects keep their identity while the storage lives (torch preserves
    their Python object), so a finaliser on it sees the moment the memory is given back."""

    def __init__(self, block: int = BLOCK):
        super().__init__()
        self.block = block
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def track(self, *tensors: torch.Tensor) -> None:
        for t in tensors:
            storage = t.untyped_storage()
            key = id(storage)
            if key in self.live:
                continue
            size = rounded(storage.nbytes(), self.block)
            self.live[key] = size
            self.current += size
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key)

    def reset_peak(self) -> None:
        self.peak = self.current

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.track(*(t for t in tree_leaves(out) if isinstance(t, torch.Tensor)))
        return out


def one_sample(config, output_stride: int) -> dict[str, torch.Tensor]:
    from spd.training.datamodule import SPDDataModule

    data = SPDDataModule(config, output_stride)
    loader = data.train_dataloader()
    batch = next(iter(loader))
    return {k: v[:1] for k, v in batch.items() if isinstance(v, torch.Tensor)}


def to_fake(module: torch.nn.Module, fake) -> torch.nn.Module:
    """MODULE with its parameters and buffers replaced by fake tensors of the same shapes and dtypes
    (built for real first: some initialisers resample on values, which fake tensors have not)."""
    for m in module.modules():
        for name, p in m._parameters.items():
            if p is not None:
                m._parameters[name] = torch.nn.Parameter(fake.from_tensor(p), requires_grad=p.requires_grad)
        for name, b in m._buffers.items():
            if b is not None:
                m._buffers[name] = fake.from_tensor(b)
    return module


def step_memory(preset: str, batch: int, size: int = 384, precision: str = "bf16-mixed",
                device: str = "fake") -> dict:
    """Peak bytes of the second of two training steps (``peak_GiB``), and the model state that
    stays between steps (``state_GiB``: parameters, gradients, momentum).

    ``device``: ``fake`` estimates on fake tensors; ``cpu`` runs the same step for real (the
    tests compare the two); ``cuda`` runs it on the GPU and adds the caching allocator's own peak
    (``allocated_GiB``: the counted tensors plus workspaces)."""
    from lightning.pytorch.plugins.precision import MixedPrecision
    from torch._subclasses.fake_tensor import FakeTensorMode

    from spd.training.module import SPDModule

    config, doc = experiment(preset, size, precision)
    module = SPDModule(doc, initialise=False).train()
    sample = one_sample(config, module.model.output_stride)
    real = torch.device("cpu" if device == "fake" else device)
    with FakeTensorMode() if device == "fake" else contextlib.nullcontext() as fake:
        module = to_fake(module, fake) if fake else module.to(real)
        one = {k: fake.from_tensor(v) if fake else v.to(real) for k, v in sample.items()}
        inputs = {k: v.expand(batch, *v.shape[1:]).clone() for k, v in one.items()}
        del one
        o = config.optim
        params = [p for p in module.parameters() if p.requires_grad]
        optimiser = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, foreach=True)
        # Lightning's own autocast for the precision: without its weight cache, a network run at
        # three scales keeps three bf16 copies of its weights for the backward pass.
        autocast = (MixedPrecision(precision, real.type).forward_context if precision == "bf16-mixed"
                    else contextlib.nullcontext)
        tracker = LiveTensorBytes()
        tracker.track(*module.parameters(), *module.buffers(), *inputs.values())
        with tracker:
            for _ in range(2):
                tracker.reset_peak()
                if real.type == "cuda":
                    torch.cuda.synchronize(real)
                    torch.cuda.reset_peak_memory_stats(real)
                with autocast():
                    loss = module.criterion(module(inputs["image"]), inputs).total
                # Lightning's order: the previous step's gradients live through this forward pass.
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                del loss
                optimiser.step()
            state = tracker.current - sum(rounded(t.untyped_storage().nbytes()) for t in inputs.values())
    row = {"preset": preset, "batch": batch, "size": size, "precision": precision, "device": device,
           "peak_bytes": tracker.peak,
           "peak_GiB": round(tracker.peak / 2**30, 3), "state_GiB": round(state / 2**30, 3)}
    if real.type == "cuda":
        row["allocated_GiB"] = round(torch.cuda.max_memory_allocated(real) / 2**30, 3)
    return row


def markdown(rows: list[dict], batches: list[int], size: int) -> str:
    lines = [f"# Estimated GPU memory of a training step ({size} px)", "",
             "Peak tensor memory (GiB) of one `spd train` step with the LIP / ATR recipe, per device, by preset and",
             "per-device batch, as `torch.cuda.max_memory_allocated` counts it; estimated on fake tensors",
             "(`benchmarks/bench_memory.py`, whose docstring says what is left out: add 1-2 GiB for the CUDA",
             "context and cuDNN workspaces). In brackets: the model state (parameters, gradients, momentum) in it.",
             ""]
    for precision in sorted({r["precision"] for r in rows}, key=PRECISIONS.index):
        lines += [f"`train.precision: {precision}`", "",
                  "| preset | " + " | ".join(f"batch {b}" for b in batches) + " |",
                  "|---|" + "---:|" * len(batches)]
        for preset in dict.fromkeys(r["preset"] for r in rows):
            cells = {r["batch"]: f"{r['peak_GiB']:.1f} ({r['state_GiB']:.1f})" for r in rows
                     if r["preset"] == preset and r["precision"] == precision}
            lines.append(f"| {preset} | " + " | ".join(cells.get(b, "–") for b in batches) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    rows = []
    for precision in args.precisions:
        for preset in args.presets:
            for batch in args.batches:
                start = time.process_time()
                rows.append(step_memory(preset, batch, args.size, precision))
                print(f"{preset} batch {batch} {precision}: {rows[-1]['peak_GiB']} GiB "
                      f"({time.process_time() - start:.0f} CPU s)", file=sys.stderr)
                results = {"torch": torch.__version__, "python": platform.python_version(), "rows": rows}
                write_text(args.out.with_suffix(".json"), json.dumps(results, indent=1) + "\n")
                write_text(args.out.with_suffix(".md"), markdown(rows, args.batches, args.size))


if __name__ == "__main__":
    main()
