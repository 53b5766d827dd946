#!/usr/bin/env bash
# Every check that needs a GPU, in one command (about 8 minutes on one GPU); one Markdown report,
# benchmarks/results_gpu_<card>.md by default, rewritten after every check and printed at the end.
# Runs with the repository's .venv, or else a Python that already has PyTorch and Lightning
# (scripts/gpu_python.sh); arguments go to benchmarks/gpu_check.py (e.g. --out FILE, --only 1 6).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source scripts/gpu_python.sh
exec "$py" benchmarks/gpu_check.py "$@"
