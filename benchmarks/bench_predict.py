"""Prediction speed and memory: latency per image for each preset through ``spd.Predictor``
(input 384 x 384, one scale, no mirror, batch 1) in float32 and with ``--precision auto`` (what
it picks on this CPU), and the time and peak memory of predicting one 6000 x 4000 photo (outputs
at full size), evaluating every output at every pixel (the path before December 2026) and with
the exact shortcuts of :class:`spd.inference.resized.ResizedSum`, each in ``--large-repeat`` fresh
processes (the median).

    python benchmarks/bench_predict.py [--presets cpu_s cpu_spd jppnet spd] [--size 384] [--device cpu]
        [--out benchmarks/results_predict_cpu]

Weights are random: speed and memory do not depend on them (random weights are the shortcuts'
worst case: their labels change often). Latency is the median over
``--repeat`` runs after one warm-up, in wall seconds and in CPU seconds of the process (all threads).
Peak memory is measured in a fresh process (peak resident set, ``VmHWM``) so that earlier
models do not count. Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see spd/cli/__init__.py

import torch

from spd import Predictor
from spd.inference import EvalConfig
from spd.inference.precision import cpu_name, native_bf16
from spd.model import SPDNet, preset


def latency(name: str, size: int, device: str, repeat: int, precision: str = "32") -> dict:
    # "32": as every figure recorded before --precision auto; "auto": what the Predictor now picks
    predictor = Predictor(SPDNet(preset(name)), EvalConfig(input_size=(size, size), stages="all"), device=device,
                          batch_size=1, precision=precision)
    image = torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
    predictor(image)  # warm-up
    walls, cpus = [], []
    for _ in range(repeat):
        if predictor.device.type == "cuda":
            torch.cuda.synchronize()
        w, c = time.perf_counter(), time.process_time()
        predictor(image)
        if predictor.device.type == "cuda":
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    params = sum(p.numel() for p in predictor.model.parameters())
    ran_in = predictor.precision + (", channels-last" if predictor.precision_choice.channels_last else "")
    return {"preset": name, "precision": precision, "ran_in": ran_in, "params_M": round(params / 1e6, 2),
            "wall_s": round(statistics.median(walls), 3), "cpu_s": round(statistics.median(cpus), 3)}


def peak_rss_mib() -> int:
    """The process's peak resident set: VmHWM (reset by exec, unlike ru_maxrss, which a child
    started by fork + exec inherits from its parent), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def peak_memory_child(name: str, size: int, height: int, width: int, device: str, every_pixel: bool) -> None:
    if every_pixel:  # the path before the shortcuts: every output evaluated at every pixel
        from spd.inference.resized import ResizedSum
        ResizedSum._cells = lambda self: None
    predictor = Predictor(SPDNet(preset(name)), EvalConfig(input_size=(size, size)), device=device, batch_size=1,
                          precision="32")
    image = torch.empty((3, height, width), dtype=torch.uint8).random_(0, 256)  # no int64 temporary
    before = peak_rss_mib()
    start = time.perf_counter()
    result = predictor(image)
    seconds = time.perf_counter() - start
    peak = peak_rss_mib()
    print(json.dumps({"preset": name, "image": f"{width}x{height}", "every_pixel": every_pixel, "peak_rss_MiB": peak,
                      "rss_before_predict_MiB": before, "wall_s": round(seconds, 2),
                      "parsing_shape": list(result.parsing.shape)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["cpu_s", "cpu_spd", "jppnet", "spd"])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-preset", default="cpu_spd")
    parser.add_argument("--large-repeat", type=int, default=3, help="fresh processes per large-photo path (median)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results_predict_cpu"))
    parser.add_argument("--child", nargs=3, type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--every-pixel", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        peak_memory_child(args.memory_preset, *args.child, args.device, args.every_pixel)
        return
    rows = [latency(name, args.size, args.device, args.repeat, precision) for name in args.presets
            for precision in ("32", "auto")]
    for row in rows:
        print(json.dumps(row), flush=True)
    large = []
    for every_pixel in (True, False):
        runs = []
        for _ in range(args.large_repeat):  # a shared machine's noise: one run took 2.5 s, the next 4.2
            child = subprocess.run([sys.executable, __file__, "--child", str(args.size), "4000", "6000", "--memory-preset",
                                    args.memory_preset, "--device", args.device, "--threads", str(args.threads)]
                                   + (["--every-pixel"] if every_pixel else []), capture_output=True, text=True,
                                   check=True)
            runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
        runs.sort(key=lambda r: r["wall_s"])
        large.append({**runs[len(runs) // 2], "wall_s_runs": [r["wall_s"] for r in runs]})
        print(json.dumps(large[-1]))
    memory = large[-1]
    native = native_bf16()
    result = {"machine": f"{cpu_name()} ({platform.machine()}; native bf16: {', '.join(native) or 'none'}), "
                         f"{os.cpu_count()} cores visible, {args.threads} threads",
              "device": args.device, "torch": torch.__version__, "input": args.size, "batch": 1,
              "date": time.strftime("%Y-%m-%d"), "latency": rows, "memory": memory, "large_photo": large}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"Prediction latency per image: {args.size} x {args.size} input, batch 1, one scale, no mirror, "
             f"outputs at the image's size; {result['machine']}, device {args.device}, torch {result['torch']}.", "",
             "| preset | --precision (ran in) | params (M) | wall s / image | CPU s / image |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['preset']} | {r['precision']} ({r['ran_in']}) | {r['params_M']} | {r['wall_s']} | {r['cpu_s']} |"
              for r in rows]
    before, after = large
    lines += ["", f"One {after['image']} photo with {after['preset']}, float32, median of {len(after['wall_s_runs'])} "
                  f"fresh processes: {before['wall_s']} s evaluating every "
                  f"output at every pixel (the path before December 2026), {after['wall_s']} s with the exact "
                  "shortcuts (labels resized only near a change of label, peaks by branch and bound, U and V only "
                  "for the predicted part)."]
    lines += ["", f"Peak memory predicting one {memory['image']} image with {memory['preset']} (all outputs at full "
                  f"size): {memory['peak_rss_MiB']} MiB resident ({memory['rss_before_predict_MiB']} MiB before the "
                  f"call, which holds the model and the decoded image), {memory['wall_s']} s."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
