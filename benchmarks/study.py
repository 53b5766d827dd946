"""Does SPD help? The paper's claim under the paper's protocol, on synthetic data where every label
is exact: the CPU family's ``cpu_s`` (parsing only), ``cpu_sp`` (+ pose), ``cpu_sd`` (+ DensePose)
and ``cpu_spd`` (all three) trained with the demo's recipe for the same number of steps and the
same schedule, several seeds each, then scored with the official protocol in domain (A val) and
across domains (domain B through the LIP-ATR shared classes).

    python benchmarks/study.py --out runs/study [--steps 3000] [--seeds 0 1 2] [--arms main scarce balance]
    python benchmarks/study.py --out runs/study --report-only     # tables and figures from what has run
    python benchmarks/study.py --out runs/study_gpu --device cuda --precision bf16-mixed --steps 6000 --arms main
    python benchmarks/study.py --out runs/study_full --recipe configs/study_full.yaml --variants s spd --seeds 0 \
        --arms main --steps 1000 --device cuda --threads 8     # the full-size network at 384 px: bash benchmarks/gpu_study.sh

The arms, the runs, what is kept and evaluated, resuming and the report: ``spd.study.driver``'s
documentation (``python -m pydoc spd.study.driver``); this script is its command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see spd/cli/__init__.py

from spd.cli.args import integer, number  # noqa: E402
from spd.config.schema import PRECISIONS  # noqa: E402
from spd.ops.errors import SPDError  # noqa: E402
from spd.study import ARMS, StudyOptions, run_study, study_variants  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=integer(4), default=3000, help="training steps of every run (of the recipe's batch; the demo's is 4)")
    parser.add_argument("--seeds", type=integer(0), nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--recipe", type=Path, default=None,
                        help="the training recipe, a config file (default: the demo's); its model preset's family "
                             "(cpu_* or full size) names the variants")
    parser.add_argument("--variants", nargs="+", default=None, choices=study_variants("cpu") + study_variants("full"),
                        help="run only these variants (of each arm that has them; default: the family's four)")
    parser.add_argument("--parsing-fraction", type=number(0, 1, low_open=True), default=0.2, help="parsing labels kept in the scarce arm")
    parser.add_argument("--val-every", type=integer(1), default=2, help="validation every N epochs (the learning curves)")
    parser.add_argument("--grad-every", type=integer(1), default=250, help="task-gradient cosines every N steps (seed 0)")
    parser.add_argument("--num", type=integer(0), default=0, help="domain A images, train + val (default: the demo's)")
    parser.add_argument("--cross", type=integer(1), default=100, help="domain B images")
    parser.add_argument("--heldout", type=integer(1), default=400, help="held-out domain A images (view / occlusion)")
    parser.add_argument("--threads", type=integer(1), default=1, help="torch threads of this process")
    parser.add_argument("--workers", type=integer(0), default=1, help="data loader processes")
    parser.add_argument("--device", default="cpu",
                        help="where every run trains and is evaluated, on one device: cpu, cuda, cuda:N, auto")
    parser.add_argument("--precision", choices=PRECISIONS, help="training precision (default: the recipe's; auto, the demo's, is 32-true in a study, every variant in one precision); bf16 ones also evaluate under bf16")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    options = StudyOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items()})
    try:
        run_study(options, log=lambda line: print(line, flush=True))
    except SPDError as err:
        raise SystemExit(f"study: {err}") from None


if __name__ == "__main__":
    main()
