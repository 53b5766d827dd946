"""Data-layer benchmark: synthetic generation and training-sample throughput on this machine.

    python benchmarks/bench_data.py [--num 1000] [--size 256] [--out results.json]

Reports single-process numbers (one core) with resolution and counts, as the README quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from spd.data.dataset import ParsingDataset
from spd.data.detect import open_dataset
from spd.data.synthetic import SynthSpec, generate, get_domain, render_person
from spd.data.synthetic.writer import image_rng
from spd.data.transforms import AugmentConfig, train_transform


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--crop", type=int, default=384)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, 1 used",
               "torch": torch.__version__, "size": args.size, "num": args.num}

    domain = get_domain("A")
    hw = (args.size, round(args.size * domain.aspect))
    start = time.perf_counter()
    for i in range(200):
        render_person(image_rng(0, "A", i), domain, hw)
    results["render_ms_per_image"] = round((time.perf_counter() - start) / 200 * 1000, 2)

    with tempfile.TemporaryDirectory() as tmp:
        for name in ("A", "B"):
            start = time.perf_counter()
            generate(Path(tmp) / name, SynthSpec(num=args.num, domain=name, size=args.size))
            results[f"generate_{name}_s"] = round(time.perf_counter() - start, 2)
        dataset = ParsingDataset(open_dataset(Path(tmp) / "A", "train"),
                                 train_transform(AugmentConfig(size=(args.crop, args.crop), rotation=15)))
        start = time.perf_counter()
        n = min(200, len(dataset))
        for i in range(n):
            dataset[i]
        results[f"train_sample_ms_at_{args.crop}"] = round((time.perf_counter() - start) / n * 1000, 2)

    for key, value in results.items():
        print(f"{key:>26}: {value}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
