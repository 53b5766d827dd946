"""The learning benchmark keeps working: a tiny budget, every kind of model it compares."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_bench_learning_runs_and_writes_its_tables(tmp_path):
    out = tmp_path / "learning"
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_learning.py"), "--budget", "1", "--num", "10",
               "--cross", "12", "--seed", "3", "--models", "cpu_spd", "r18_fpn", "lraspp", "--set", "cpu_spd:loss.pose=0.1",
               "--data", str(tmp_path / "data"), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.with_suffix(".json").read_text())
    rows = result["rows"]
    assert result["seed"] == 3 and "seed 3." in out.with_suffix(".md").read_text()
    assert [r["model"] for r in rows] == ["cpu_spd", "r18_fpn", "lraspp"]
    assert rows[0]["overrides"] == ["loss.pose=0.1"] and rows[0]["A_pckh"] is not None
    assert all(r["steps"] >= 1 and r["cpu_s"] >= 1 and 0 <= r["A_miou"] <= 100 for r in rows)
    assert "| cpu_spd | loss.pose=0.1 |" in out.with_suffix(".md").read_text()
