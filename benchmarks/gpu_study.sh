#!/usr/bin/env bash
# The study's full-size comparison on one GPU: the paper's network at 384 px, parsing alone (s)
# against SPD (spd), trained from scratch on synthetic domain A for the same STEPS (default 1000,
# batch 8, seed 0, bf16) with configs/study_full.yaml, then scored as the CPU study is (A val,
# A held-out by view and occlusion, B through the shared classes) and reported in STUDY_OUT/report/.
# Resumable: run it again to continue. Extra arguments go to benchmarks/study.py (e.g. --seeds 0 1).
#
#   STEPS=1000 STUDY_OUT=runs/study_full bash benchmarks/gpu_study.sh
#
# Not yet run on a GPU; the time is an estimate. First 1,600 + 300 synthetic images are made (about
# 70 s on one core). spd's forward at its three training scales is 1.4 TFLOP per 384 x 384 image
# (benchmarks/results_speed_cpu.md), so about 3.3 TFLOP per 384 x 307 training image; at 15-30% of
# an H200's bf16 peak, 1,000 steps of batch 8 take 1.5-3 minutes for spd and about half that for
# s, plus start-up and evaluation: about 5-7 minutes in all. benchmarks/gpu_check.sh measures
# the card's real speed ("spd, 384 px, batch 8").
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source scripts/gpu_python.sh
exec "$py" benchmarks/study.py --out "${STUDY_OUT:-runs/study_full}" --recipe configs/study_full.yaml \
    --variants s spd --arms main --seeds 0 --steps "${STEPS:-1000}" --heldout 200 --device cuda --threads 8 \
    --workers 8 "$@"
