#!/usr/bin/env bash
# Every check that needs a GPU, in one command (about 8 minutes on one GPU); one Markdown report,
# benchmarks/results_gpu_<card>.md by default. Set up as the README's commands do (.venv, pinned
# versions); arguments go to benchmarks/gpu_check.py (e.g. --out FILE, --only 1 6).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/run.sh spd --version >/dev/null   # the set-up, once
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" HF_HUB_OFFLINE=1
exec .venv/bin/python benchmarks/gpu_check.py "$@"
