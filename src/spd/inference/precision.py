"""``--precision auto``: the network under bfloat16 autocast where that is faster for this model on
this machine, in float32 otherwise.

Machines of one kind differ: a CPU with AMX (or AVX-512 BF16) runs bf16 convolutions several times
faster than float32, one without emulates them, tens of times slower. So ``auto`` asks the CPU
what it supports (``/proc/cpuinfo``'s flags); where bf16 is native it times one forward of the
model's own network at the protocol's input size both ways and keeps bf16 only when it is at
least :data:`MIN_GAIN` times faster. The decision is cached per machine, torch version, model and
input size (``$SPD_CACHE_DIR``, else ``$XDG_CACHE_HOME/spd`` or ``~/.cache/spd``:
``precision.json``), so only the first run measures. On CUDA, bf16 wherever the GPU supports it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..ops.atomic import write_text
from ..ops.validation import require_choice

PRECISIONS = ("auto", "32", "bf16")
NATIVE_BF16 = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs with bf16 arithmetic
MIN_GAIN = 1.2      # bf16 kept only when a forward is at least this much faster
TIMED_RUNS = 2      # after one untimed (oneDNN picks and caches its kernels on the first)


@dataclass(frozen=True)
class PrecisionChoice:
    """``precision``: ``"32"`` or ``"bf16"``; ``reason``: why, in words; ``seconds``: one forward
    per precision, when measured."""

    precision: str
    reason: str
    seconds: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        name = {"32": "float32", "bf16": "bfloat16 autocast"}[self.precision]
        return f"precision: {name} ({self.reason})"


def _cpuinfo(field: str) -> str | None:
    """The first value of ``field`` in ``/proc/cpuinfo`` (Linux); None where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux); empty where they cannot be read."""
    return set((_cpuinfo("flags") or "").split())


def native_bf16() -> list[str]:
    """The flags by which this CPU computes bf16 natively (AMX, AVX-512 BF16); empty if none."""
    return sorted(set(NATIVE_BF16) & cpu_flags())


def cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cache_file() -> Path:
    root = os.environ.get("SPD_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spd"
    return Path(root) / "precision.json"


def _key(model, input_size: tuple[int, int], flags: list[str]) -> str:
    record = json.dumps(model.metadata() if hasattr(model, "metadata") else repr(model), sort_keys=True, default=str)
    text = json.dumps([cpu_name(), flags, torch.__version__, os.cpu_count(), torch.get_num_threads(), record,
                       list(input_size)])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def forward_seconds(model, input_size: tuple[int, int], precision: str, runs: int = TIMED_RUNS) -> float:
    """The fastest of ``runs`` forwards (after an untimed one) of one image at ``input_size``."""
    first = next(model.parameters(), None)
    x = torch.zeros(1, 3, *input_size, device=first.device if first is not None else "cpu")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    best = float("inf")
    with torch.no_grad(), autocast:
        for i in range(runs + 1):
            start = time.perf_counter()
            model.predict_stages(x)
            if i:
                best = min(best, time.perf_counter() - start)
    return best


def resolve_precision(precision: str, model, input_size: tuple[int, int]) -> PrecisionChoice:
    """``"32"`` / ``"bf16"`` as asked; ``"auto"``: as the module's documentation says."""
    require_choice("precision", precision, PRECISIONS)
    if precision != "auto":
        return PrecisionChoice(precision, "as asked")
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16", f"{torch.cuda.get_device_name(device)} computes in bf16")
        return PrecisionChoice("32", f"{torch.cuda.get_device_name(device)} has no bf16")
    if device.type != "cpu":
        return PrecisionChoice("32", f"no bf16 rule for {device.type}")
    native = native_bf16()
    if not native:
        return PrecisionChoice("32", "this CPU has no native bf16 (no AMX, no AVX-512 BF16): bf16 would be emulated, "
                                     "far slower")
    path, key = cache_file(), _key(model, input_size, native)
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if key in cached and isinstance(cached[key], dict) and cached[key].get("precision") in ("32", "bf16"):
        entry = cached[key]
        return PrecisionChoice(entry["precision"], f"measured on this machine before ({path})", entry.get("seconds", {}))
    seconds = {p: forward_seconds(model, input_size, p) for p in ("32", "bf16")}
    gain = seconds["32"] / seconds["bf16"]
    chosen = "bf16" if gain >= MIN_GAIN else "32"
    reason = (f"{', '.join(native)}: one forward at {input_size[0]}x{input_size[1]} took {seconds['32']:.3f} s in "
              f"float32, {seconds['bf16']:.3f} s in bf16 ({gain:.2f}x)")
    try:
        write_text(path, json.dumps({**cached, key: {"precision": chosen, "seconds": seconds,
                                                     "model": getattr(getattr(model, "config", None), "name", "")}},
                                    indent=1) + "\n")
    except OSError:
        pass  # an unwritable cache only means measuring again next time
    return PrecisionChoice(chosen, reason, seconds)
