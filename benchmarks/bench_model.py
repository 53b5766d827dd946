"""Model benchmark: parameters, GFLOPs, CPU latency and peak memory of the presets beside
torchvision's DeepLabV3-ResNet101, measured in the same run.

    python benchmarks/bench_model.py [--size 384] [--runs 3] [--models jppnet s sp sd spd] [--out r.json]

Each model is measured in its own subprocess (so that peak RSS is its own): inference, batch 1,
float32, one input scale (the network's cost per forward; JPPNet-style training runs it at 3
scales, see the "configured" GFLOPs column), after one warm-up forward, median of ``--runs``.
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

import torch


def build(name: str, single_scale: bool) -> torch.nn.Module:
    if name == "deeplabv3_resnet101":
        from torchvision.models.segmentation import deeplabv3_resnet101

        return deeplabv3_resnet101(weights=None, weights_backbone=None, num_classes=20, aux_loss=False)
    from spd.model import SPDNet, preset

    return SPDNet(preset(name, scales=(1.0,)) if single_scale else preset(name))


def measure_one(name: str, size: int, runs: int) -> dict:
    from spd.model.summary import forward_flops

    torch.manual_seed(0)
    model = build(name, single_scale=True).eval()
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(1, 3, size, size)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    with torch.no_grad():
        for i in range(runs + 1):
            start = time.perf_counter()
            model(x)
            if i:
                times.append(time.perf_counter() - start)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"model": name, "params_M": round(params / 1e6, 2), "latency_s": round(statistics.median(times), 3),
              "peak_rss_GiB": round(rss_peak / 2**20, 2), "forward_rss_increase_GiB": round((rss_peak - rss_before) / 2**20, 2)}
    if name == "deeplabv3_resnet101":
        from torch.utils.flop_counter import FlopCounterMode

        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        result["gflops"] = result["gflops_configured"] = round(counter.get_total_flops() / 1e9, 1)
    else:
        result["gflops"] = round(forward_flops(model, (size, size)) / 1e9, 1)
        configured = build(name, single_scale=False)
        result["gflops_configured"] = round(forward_flops(configured, (size, size)) / 1e9, 1)
        result["scales"] = list(configured.config.scales)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["jppnet", "s", "sp", "sd", "spd", "deeplabv3_resnet101"])
    parser.add_argument("--out", default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.size, args.runs)))
        return
    print(f"device: CPU ({platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads); input {args.size}x{args.size}, batch 1, float32, inference")
    rows = []
    for name in args.models:
        out = subprocess.run([sys.executable, __file__, "--one", name, "--size", str(args.size), "--runs", str(args.runs)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{r['model']:<20} params {r['params_M']:>7.2f} M  GFLOPs {r['gflops']:>7.1f} (configured "
              f"{r['gflops_configured']:>7.1f})  latency {r['latency_s']:>6.3f} s  peak RSS {r['peak_rss_GiB']:.2f} GiB "
              f"(+{r['forward_rss_increase_GiB']:.2f} in forward)", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
