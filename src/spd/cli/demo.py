"""``spd demo``: the main job on the embedded default, the synthetic human dataset.

For now it generates both domains, reads them back through the real LIP / ATR readers, prints
their summaries and writes contact sheets; training and evaluation join it in a later step.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tqdm import tqdm

from ..data.detect import open_dataset
from ..data.summary import dataset_stats
from ..data.synthetic import SynthSpec, generate
from ..vis import contact_sheet


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job on the synthetic dataset (CPU, minutes)")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--num", type=int, default=300, help="images per domain (default 300)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    for domain in ("A", "B"):
        root = args.out / "data" / f"synthetic_{domain}"
        spec = SynthSpec(num=args.num, domain=domain, seed=args.seed, size=args.size)
        with tqdm(total=spec.num, desc=f"synthetic domain {domain}", unit="img", disable=None) as bar:
            generate(root, spec, progress=bar.update)
        reader = open_dataset(root, "train")
        print(f"\n[domain {domain}] {root}\n{reader.summary()}")
        print(dataset_stats(reader).format(reader.label_space))
        sheet = contact_sheet([reader[i] for i in range(min(6, len(reader)))], args.out / f"contact_sheet_{domain}.png")
        print(f"contact sheet: {sheet}")
    print(f"\ndemo finished in {time.perf_counter() - start:.1f} s")
    return 0
