"""``spd demo``: the main job on the embedded default (see :func:`spd.demo.run_demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .args import integer
from .progress import bars


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="generate data, train, evaluate and report on the synthetic dataset (CPU, minutes)")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override the demo config (src/spd/config/demo.yaml), e.g. --set train.max_epochs=1")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (one device)")
    p.add_argument("--cross-domain", type=integer(0), default=100, metavar="N",
                   help="also evaluate on N images of domain B through the shared-class mapping (0: skip)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    with bars() as progress:
        result = run_demo(args.out, args.overrides, args.device, args.cross_domain, progress)
    print((result.report_dir / "README.md").read_text(encoding="utf-8"))
    print(f"report: {result.report_dir}  (demo finished in {result.seconds:.0f} s)")
    return 0
