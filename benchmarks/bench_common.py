"""What the benchmarks share: timing a pass over photos, naming the machine, writing OUT.json and
OUT.md (imported from beside them, as bench_memory imports bench_speed)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from spd.inference.precision import cpu_name, native_bf16


def best_pass(run: Callable[[list], object], photos: list, repeat: int) -> float:
    """Images per second: the best of ``repeat`` timed passes of ``run(photos)`` after one untimed."""
    run(photos)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run(photos)
        best = min(best, time.perf_counter() - start)
    return len(photos) / best


def machine() -> dict:
    """The CPU by name, and the flags by which it computes bf16 natively (empty if none)."""
    return {"cpu": cpu_name(), "native_bf16": native_bf16()}


def write_results(out: Path, record: dict, lines: list[str]) -> None:
    """``record`` as OUT.json, ``lines`` as OUT.md, and the lines printed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
