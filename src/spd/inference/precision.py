"""``--precision auto``: the network under bfloat16 autocast and in the channels-last memory format
where that is faster for this model on this machine, in float32 otherwise.

Machines of one kind differ: a CPU with AMX (or AVX-512 BF16) runs bf16 convolutions several times
faster than float32, one without emulates them, tens of times slower; oneDNN's AMX kernels want
channels-last (NHWC) weights, without which bf16 gains half as much. So ``auto`` asks the CPU
what it supports (``/proc/cpuinfo``'s flags); where bf16 is native it times one forward of the
model's own network at the protocol's input size in each of float32 and bf16, each in the default
and the channels-last layout, and leaves float32 only for a mode at least :data:`MIN_GAIN` times
faster. The decision is cached per machine, torch version, model and input size
(``$SPD_CACHE_DIR``, else ``$XDG_CACHE_HOME/spd`` or ``~/.cache/spd``: ``precision.json``), so only
the first run measures. On CUDA, bf16 wherever the GPU supports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..ops.atomic import write_text
from ..ops.validation import require_choice

PRECISIONS = ("auto", "32", "bf16")
NATIVE_BF16 = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs with bf16 arithmetic
MIN_GAIN = 1.2      # float32 left only for a mode whose forward is at least this much faster
# The modes auto times where bf16 is native: (precision, channels-last); the first is the default.
MODES = (("32", False), ("32", True), ("bf16", False), ("bf16", True))
TIMED_RUNS = 2      # after one untimed (oneDNN picks and caches its kernels on the first)


@dataclass(frozen=True)
class PrecisionChoice:
    """``precision``: ``"32"`` or ``"bf16"``; ``channels_last``: the network's weights in the
    channels-last memory format (the outputs are the same up to float rounding); ``reason``: why,
    in words; ``seconds``: one forward per mode (:func:`mode_name`), when measured."""

    precision: str
    reason: str
    seconds: dict[str, float] = field(default_factory=dict)
    channels_last: bool = False

    def __str__(self) -> str:
        name = {"32": "float32", "bf16": "bfloat16 autocast"}[self.precision]
        return f"precision: {name}{', channels-last' if self.channels_last else ''} ({self.reason})"

    def apply(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model``, its weights turned channels-last (in place) where this choice says so, else as
        it was (a model training in channels-last stays so)."""
        return model.to(memory_format=torch.channels_last) if self.channels_last else model


def memory_format(model: torch.nn.Module) -> torch.memory_format:
    """channels-last if the model's first 4-D weight is so laid out, else the default layout."""
    weight = next((p for p in model.parameters() if p.dim() == 4), None)
    last = weight is not None and weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    return torch.channels_last if last else torch.contiguous_format


@contextlib.contextmanager
def in_layout(model: torch.nn.Module, channels_last: bool | None) -> Iterator[torch.nn.Module]:
    """``model`` with its weights channels-last (True) or in the default layout (False) inside the
    block, as they are (None); afterwards in the layout they had before it."""
    before = memory_format(model)
    if channels_last is not None:
        model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    try:
        yield model
    finally:
        model.to(memory_format=before)


def fastest_of(run: Callable[[], object], runs: int = TIMED_RUNS) -> float:
    """The fewest seconds one of ``runs`` calls of ``run`` took, after an untimed one."""
    run()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def mode_name(precision: str, channels_last: bool) -> str:
    return f"{precision}{'+channels_last' if channels_last else ''}"


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


def _key(model, question: list, flags: list[str], modes: tuple) -> str:
    record = json.dumps(model.metadata() if hasattr(model, "metadata") else repr(model), sort_keys=True, default=str)
    text = json.dumps([modes, cpu_name(), flags, torch.__version__, os.cpu_count(), torch.get_num_threads(), record,
                       question])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def measured_choice(model, question: list, what: str, timer: Callable[[str, bool], float],
                    modes: tuple = MODES) -> PrecisionChoice:
    """The mode of ``modes`` (:data:`MODES`; the first is the default) to run ``model`` in on this
    CPU: the default where bf16 is not native (no measurement); else the fastest by
    ``timer(precision, channels_last)`` (seconds of ``what``, e.g. "one forward at 384x384"), the
    default unless at least :data:`MIN_GAIN` times faster. The answer is remembered per machine,
    torch, model and ``question`` (e.g. the input size)."""
    native = native_bf16()
    if not native:
        return PrecisionChoice("32", "this CPU has no native bf16 (no AMX, no AVX-512 BF16): bf16 would be emulated, "
                                     "far slower", channels_last=modes[0][1])
    path, key = cache_file(), _key(model, question, native, modes)
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    entry = cached.get(key)
    if isinstance(entry, dict) and entry.get("precision") in ("32", "bf16"):
        return PrecisionChoice(entry["precision"], f"measured on this machine before ({path})", entry.get("seconds", {}),
                               bool(entry.get("channels_last", False)))
    seconds = {mode_name(*mode): timer(*mode) for mode in modes}
    fastest = min(modes, key=lambda mode: seconds[mode_name(*mode)])
    gain = seconds[mode_name(*modes[0])] / seconds[mode_name(*fastest)]
    chosen = fastest if gain >= MIN_GAIN else modes[0]
    timings = ", ".join(f"{name} {t:.3f} s" for name, t in seconds.items())
    reason = f"{', '.join(native)}: {what}: {timings} ({gain:.2f}x)"
    try:
        write_text(path, json.dumps({**cached, key: {"precision": chosen[0], "channels_last": chosen[1],
                                                     "seconds": seconds, "question": question,
                                                     "model": getattr(getattr(model, "config", None), "name", "")}},
                                    indent=1) + "\n")
    except OSError:
        pass  # an unwritable cache only means measuring again next time
    return PrecisionChoice(chosen[0], reason, seconds, chosen[1])


def forward_seconds(model, input_size: tuple[int, int], precision: str, runs: int = TIMED_RUNS,
                    channels_last: bool = False) -> float:
    """The fastest of ``runs`` forwards (after an untimed one) of one image at ``input_size``, the
    weights in the channels-last memory format if asked (the model is left in the layout it had)."""
    first = next(model.parameters(), None)
    x = torch.zeros(1, 3, *input_size, device=first.device if first is not None else "cpu")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    with in_layout(model, channels_last), torch.no_grad(), autocast:
        return fastest_of(lambda: model.predict_stages(x), runs)


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
    return measured_choice(model, ["predict", list(input_size)], f"one forward at {input_size[0]}x{input_size[1]}",
                           lambda p, channels_last: forward_seconds(model, input_size, p, channels_last=channels_last))
