"""The speed benchmark keeps working (tiny size, one small model); its numbers are not checked:
speed is measured by the benchmark itself, never in tests."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / "benchmarks" / "bench_speed.py"


def test_speed_benchmark_runs_and_writes_json_and_markdown(tmp_path):
    out = tmp_path / "speed"
    subprocess.run([sys.executable, str(BENCH), "--models", "cpu_s", "--modes", "fp32", "channels_last", "--size", "64",
                    "--batches", "1", "2", "--repeats", "1", "--warmup", "0", "--train-batch", "2",
                    "--loader-samples", "2", "--out", str(out)], check=True, capture_output=True, text=True, timeout=600)
    results = json.loads(Path(f"{out}.json").read_text())
    model = results["models"][0]
    assert model["model"] == "cpu_s" and model["params_M"] > 1 and model["gflops"] > 0
    assert [m["mode"] for m in model["inference"]] == ["fp32", "channels_last"]
    assert all(m["best_images_per_s"] > 0 and m["latency_s"] > 0 for m in model["inference"])
    assert model["training"]["images_per_s"] > 0 and results["loader"]["images_per_s_per_worker"] > 0
    text = Path(f"{out}.md").read_text()
    assert "| cpu_s | " in text and "Data loader:" in text and "64x64 input" in text


def test_speed_benchmark_can_leave_the_loader_out_and_refuses_a_negative_count(tmp_path):
    out = tmp_path / "speed"
    subprocess.run([sys.executable, str(BENCH), "--models", "cpu_s", "--modes", "fp32", "--size", "64", "--batches", "1",
                    "--repeats", "1", "--warmup", "0", "--skip-train", "--loader-samples", "0", "--out", str(out)],
                   check=True, capture_output=True, text=True, timeout=600)
    assert "loader" not in json.loads(Path(f"{out}.json").read_text())
    assert "Data loader:" not in Path(f"{out}.md").read_text()
    bad = subprocess.run([sys.executable, str(BENCH), "--models", "cpu_s", "--loader-samples", "-1", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "--loader-samples must be 0" in bad.stderr


def test_speed_benchmark_keeps_the_other_results_when_a_model_fails(tmp_path):
    out = tmp_path / "speed"
    run = subprocess.run([sys.executable, str(BENCH), "--models", "no_such_model", "cpu_s", "--modes", "fp32", "--size",
                          "64", "--batches", "1", "--repeats", "1", "--warmup", "0", "--skip-train", "--loader-samples",
                          "0", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 1 and "failed: no_such_model" in run.stderr
    failed, measured = json.loads(Path(f"{out}.json").read_text())["models"]
    assert failed["model"] == "no_such_model" and "no_such_model" in failed["error"]
    assert measured["model"] == "cpu_s" and measured["inference"][0]["latency_s"] > 0
    text = Path(f"{out}.md").read_text()
    assert "| no_such_model | failed: " in text and "| cpu_s | " in text
