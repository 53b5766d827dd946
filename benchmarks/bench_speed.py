"""How fast every model runs: parameters, GFLOPs, inference latency and throughput in several
execution modes, training speed, and whether the data loader keeps up.

    python benchmarks/bench_speed.py --out benchmarks/results_speed_cpu          # the full run
    python benchmarks/bench_speed.py --models cpu_s --size 64 --repeats 1 --out /tmp/s   # a smoke run

For each model (the full-size presets, the CPU family and torchvision's DeepLabV3-ResNet101 as the
reference a user would otherwise pick), in its own subprocess so that its peak memory is its own:

* parameters, and GFLOPs per image at SIZE x SIZE counted by torch's FLOP counter (a multiply-add
  is 2), at one input scale and at the preset's configured scales;
* inference (one scale, as a forward pass is used at test time): latency at batch 1 and
  throughput at each of ``--batches`` (the best is reported), per execution mode: ``fp32`` (the
  path before ``--precision auto``), ``bf16`` (autocast), ``channels_last``,
  ``bf16_channels_last``, ``auto`` (what ``--precision auto`` picks on this machine: the new
  path), ``compile`` (``torch.compile`` of the channels-last model) and ``compile_bf16`` (the same
  under bf16 autocast); the CPU and its native bf16 (AMX, AVX-512 BF16) named; the achieved GFLOP/s
  beside it, a ratio that holds where absolute times drift between machines;
* training at the paper's settings (the preset's scales, SGD, the multi-task loss) on batches
  of the synthetic data: images per second and peak memory.

The data loader is measured once: images per second of one worker (one process, one thread)
loading and augmenting synthetic 384-px samples with JPPNet's recipe, against what the training
step consumes, so that the number of workers a device needs can be read off.

Warm-up runs first, then ``--repeats`` timed runs; medians. Every number is printed with the
device, versions, resolution and batch it was measured at, and written to OUT.json / OUT.md
after every model (atomically), so an interrupted run keeps what it measured. A model or loader
measurement that fails is recorded with its error, the others go on, and the run exits non-zero.
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
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from spd.ops.atomic import write_text

FULL_SIZE = ["jppnet", "s", "sp", "sd", "spd"]
CPU_FAMILY = ["cpu_s", "cpu_sp", "cpu_sd", "cpu_spd"]
REFERENCE = "deeplabv3_resnet101"
# bf16_channels_last: bf16 autocast of the channels-last model (what oneDNN's AMX kernels want);
# auto: what --precision auto picks on this machine (spd.inference.precision; the SPD models only);
# compile: torch.compile of the channels-last model in fp32; compile_bf16: the same under bf16 autocast.
MODES = ["fp32", "bf16", "channels_last", "bf16_channels_last", "auto", "compile", "compile_bf16"]


def build(name: str, single_scale: bool) -> torch.nn.Module:
    if name == REFERENCE:
        from torchvision.models.segmentation import deeplabv3_resnet101

        return deeplabv3_resnet101(weights=None, weights_backbone=None, num_classes=20, aux_loss=False)
    from spd.model import SPDNet, preset

    return SPDNet(preset(name, train_scales=(1.0,)) if single_scale else preset(name))


def count_gflops(model: torch.nn.Module, size: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 1e9


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of ``fn()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def prepared(model: torch.nn.Module, mode: str, device: torch.device, size: int):
    """(callable taking an input batch, input memory format, autocast context, the mode in words)."""
    model = model.to(device).eval()
    compiled = mode.startswith("compile")
    channels_last, bf16, said = mode in ("channels_last", "bf16_channels_last") or compiled, "bf16" in mode, mode
    if mode == "auto":
        from spd.inference.precision import resolve_precision

        choice = resolve_precision("auto", model, (size, size))
        channels_last, bf16 = choice.channels_last, choice.precision == "bf16"
        said = f"auto: {'bf16' if bf16 else 'fp32'}{', channels-last' if channels_last else ''}"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    fn = torch.compile(model) if compiled else model
    return fn, fmt, autocast, said


def measure_inference(model: torch.nn.Module, mode: str, size: int, batches: list[int], gflops: float,
                      device: torch.device, warmup: int, repeats: int) -> dict:
    fn, fmt, autocast, said = prepared(model, mode, device, size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result = {"mode": said, "throughput": {}}
    with torch.no_grad():
        for b in batches:
            x = torch.randn(b, 3, size, size, device=device).to(memory_format=fmt)
            with autocast:
                seconds = timed(lambda: fn(x), device, warmup + (1 if mode.startswith("compile") else 0), repeats)
            if b == 1:
                result["latency_s"] = round(seconds, 4)
            result["throughput"][b] = round(b / seconds, 2)
    best = max(result["throughput"], key=result["throughput"].get)
    result["best_batch"], result["best_images_per_s"] = best, result["throughput"][best]
    result["gflop_per_s"] = round(gflops * result["best_images_per_s"], 1)
    result["peak_memory_GiB"] = round(peak_memory_gib(device), 2)
    return result


def synthetic_root(size: int, num: int) -> Path:
    """A small synthetic dataset, made once per size under the temp folder."""
    from spd.data.synthetic import SynthSpec, generate

    root = Path(tempfile.gettempdir()) / f"spd_bench_speed_{size}_{num}"
    generate(root, SynthSpec(num=num, domain="A", seed=0, size=size, val_fraction=0.0))
    return root


def experiment(preset: str, size: int, precision: str, extra: list[str] = (), num: int = 4):
    """The LIP recipe for PRESET (its config file when there is one) on NUM synthetic images at SIZE,
    with EXTRA overrides: the config and its resolved dict, as ``spd train`` loads them."""
    from spd.config import load_config

    configs = Path(__file__).parents[1] / "configs"
    path = configs / f"lip_{preset}.yaml"
    overrides = [f"data.root={synthetic_root(size, num)}", "data.train_split=train", "data.val_split=train",
                 "data.densepose=null", "data.num_workers=0", "model.backbone_weights=null",
                 f"augment.size=[{size},{size}]", f"train.precision={precision}"]
    if not path.exists():  # the CPU family: the same recipe, its own preset
        path, overrides = configs / "lip_s.yaml", [*overrides, f"model.preset={preset}", "model.dilated=null"]
    return load_config(path, [*overrides, *extra])


def measure_training(name: str, size: int, batch: int, device: torch.device, warmup: int, repeats: int) -> dict:
    """A training step as ``spd train`` takes it: the LIP recipe's Lightning module (its model, its
    multi-task loss, channels as trained) on batches from its data module, SGD."""
    from spd.training.datamodule import SPDDataModule
    from spd.training.module import SPDModule

    if name == REFERENCE:
        return {}
    config, doc = experiment(name, size, "32-true", [f"data.batch_size={batch}"], num=batch * 2)
    module = SPDModule(doc, initialise=False).to(device).train()
    loader = SPDDataModule(config, module.model.output_stride).train_dataloader()
    batches = [{k: v.to(device) for k, v in b.items() if isinstance(v, torch.Tensor)} for _, b in zip(range(2), loader)]
    optimiser = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=1e-6, momentum=0.9)
    step_index = [0]

    def step() -> None:
        b = batches[step_index[0] % len(batches)]
        step_index[0] += 1
        loss = module.criterion(module(b["image"]), b).total
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = timed(step, device, warmup, repeats)
    return {"batch": batch, "scales": list(module.model.config.train_scales), "step_s": round(seconds, 3),
            "images_per_s": round(batch / seconds, 3), "peak_memory_GiB": round(peak_memory_gib(device), 2),
            "recipe": config.model.name}


def measure_loader(size: int, samples: int) -> dict:
    """Images per second of one single-threaded worker loading the training set as ``spd train``
    does under the LIP recipe (JPPNet's augmentation and targets), synthetic data."""
    from spd.model import SPDNet
    from spd.training.datamodule import SPDDataModule

    torch.set_num_threads(1)
    config, _ = experiment("spd", size, "32-true", num=samples)
    dataset = SPDDataModule(config, SPDNet(config.model).output_stride).train_dataset()
    dataset[0]
    cpu = time.process_time()
    start = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"size": size, "samples": len(dataset), "images_per_s_per_worker": round(len(dataset) / wall, 1),
            "cpu_ms_per_image": round(1000 * cpu / len(dataset), 1)}


def measure_model(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    single = build(args.one, single_scale=True)
    result = {"model": args.one, "params_M": round(sum(p.numel() for p in single.parameters()) / 1e6, 2),
              "gflops": round(count_gflops(single, args.size), 2)}
    if args.one != REFERENCE:
        configured = build(args.one, single_scale=False)
        result["gflops_configured"] = round(count_gflops(configured, args.size), 2)
        result["scales"] = list(configured.config.train_scales)
        del configured
    result["inference"] = []
    for mode in args.modes:
        if mode == "auto" and args.one == REFERENCE:
            continue  # --precision auto is SPD's; the reference's modes above show the same choices
        try:
            result["inference"].append(measure_inference(single, mode, args.size, args.batches, result["gflops"], device,
                                                         args.warmup, args.repeats))
        except Exception as err:  # a mode this machine or version cannot run is reported, not fatal
            result["inference"].append({"mode": mode, "error": f"{type(err).__name__}: {err}"[:300]})
    if not args.skip_train:
        result["training"] = measure_training(args.one, args.size, args.train_batch, device, args.warmup, args.repeats)
    return result


def last_line(error: str) -> str:
    """The last line of a traceback (the exception), short enough for a table cell."""
    return (error.strip().splitlines() or ["?"])[-1][:160].replace("|", "/")


def environment(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    env = {"device": args.device, "machine": platform.machine(), "cpu_count": os.cpu_count(),
           "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()}
    import torchvision

    env["torchvision"] = torchvision.__version__
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    else:
        from spd.inference.precision import cpu_name, native_bf16

        env["cpu"], env["native_bf16"] = cpu_name(), native_bf16()
    return env


def markdown(results: dict) -> str:
    env, size = results["environment"], results["size"]
    cpu = (f"{env.get('cpu', env['machine'])}, {env['cpu_count']} cores, native bf16: "
           f"{', '.join(env.get('native_bf16') or []) or 'none'}")
    lines = [f"# Speed: {env['device']} ({env.get('gpu', cpu)}), "
             f"torch {env['torch']}, torchvision {env['torchvision']}, {size}x{size} input", "",
             "Inference at one input scale; latency at batch 1, throughput at the best of batches "
             f"{results['batches']}; medians of {results['repeats']} runs after {results['warmup']} warm-up(s). "
             "GFLOPs per image (multiply-add = 2). "
             + ("Peak memory: the CUDA allocator's peak." if env["device"].startswith("cuda") else
                "Peak memory: the process's peak resident set so far; the modes run in the order listed, in one "
                "process per model, so a mode's figure includes those before it."), "",
             "| model | params (M) | GFLOPs | GFLOPs, configured scales | mode | latency (s) | best batch | images/s | GFLOP/s | peak memory (GiB) |",
             "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in results["models"]:
        if "error" in r:
            lines.append(f"| {r['model']} | failed: {last_line(r['error'])} | | | | | | | | |")
            continue
        for m in r["inference"]:
            if "error" in m:
                lines.append(f"| {r['model']} | {r['params_M']} | {r['gflops']} | {r.get('gflops_configured', '–')} | "
                             f"{m['mode']} | failed: {m['error'][:80]} | | | | |")
                continue
            lines.append(f"| {r['model']} | {r['params_M']} | {r['gflops']} | {r.get('gflops_configured', '–')} | "
                         f"{m['mode']} | {m.get('latency_s', '–')} | {m['best_batch']} | {m['best_images_per_s']} | "
                         f"{m['gflop_per_s']} | {m['peak_memory_GiB']} |")
    trained = [r for r in results["models"] if r.get("training")]
    if trained:
        lines += ["", f"Training (the preset's scales, SGD, the multi-task loss, synthetic batches, {size}x{size}):", "",
                  "| model | batch | scales | step (s) | images/s | peak memory (GiB) |", "| --- | ---: | --- | ---: | ---: | ---: |"]
        lines += [f"| {r['model']} | {t['batch']} | {t['scales']} | {t['step_s']} | {t['images_per_s']} | {t['peak_memory_GiB']} |"
                  for r in trained for t in [r["training"]]]
    loader = results.get("loader")
    if loader and "error" in loader:
        lines += ["", f"Data loader: failed: {last_line(loader['error'])}"]
    elif loader:
        lines += ["", f"Data loader: {loader['images_per_s_per_worker']} images/s per worker ({loader['cpu_ms_per_image']} "
                      f"ms of CPU per image; JPPNet recipe, {loader['size']} px synthetic samples, one thread)."]
        for r in trained:
            need = r["training"]["images_per_s"] / max(loader["images_per_s_per_worker"], 1e-9)
            lines.append(f"- {r['model']}: training consumes {r['training']['images_per_s']} images/s, "
                         f"{need:.2f} workers' worth")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=FULL_SIZE + CPU_FAMILY + [REFERENCE])
    parser.add_argument("--modes", nargs="+", default=MODES[:5], choices=MODES,
                        help="execution modes (compile is slow to build on a CPU: ask for it)")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--train-batch", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--loader-samples", type=int, default=32, help="0 leaves the data loader out")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loader_samples < 0:
        parser.error(f"--loader-samples must be 0 (leave the loader out) or more, got {args.loader_samples}")
    if args.one:
        print(json.dumps(measure_model(args)))
        return
    env = environment(args)
    print(f"device {env['device']}, {env.get('gpu', env['machine'])}, {env['cpu_count']} cores, torch {env['torch']}, "
          f"input {args.size}x{args.size}, batches {args.batches}, modes {args.modes}", flush=True)
    results = {"environment": env, "size": args.size, "batches": args.batches, "repeats": args.repeats,
               "warmup": args.warmup, "models": []}
    passed = [a for a in sys.argv[1:] if a != "--one"]
    failed: list[str] = []
    for name in args.models:
        # Each model in its own process (peak memory is per process); one that fails is recorded and the
        # others go on, and the files are rewritten after every model, so hours of results survive a fault.
        results["models"].append({"model": name, **measured([sys.executable, __file__, *passed, "--one", name],
                                                            name, failed)})
        if "error" not in results["models"][-1]:
            print_model(results["models"][-1])
        save(results, args.out)
    if args.loader_samples:
        results["loader"] = measured([sys.executable, "-c", "import json, sys; sys.path.insert(0, sys.argv[1]); "
                                      "import bench_speed; print(json.dumps(bench_speed.measure_loader(int(sys.argv[2]), int(sys.argv[3]))))",
                                      str(Path(__file__).parent), str(args.size), str(args.loader_samples)],
                                     "data loader", failed)
        save(results, args.out)
    print(markdown(results))
    if failed:
        sys.exit(f"failed: {', '.join(failed)} (recorded in {args.out}.json and .md; the other results are kept)")


def measured(command: list[str], label: str, failed: list[str]) -> dict:
    """Runs one measurement subprocess: the JSON of its last output line, or {"error": its stderr}
    when it fails (then ``label`` is added to ``failed``)."""
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode:
        failed.append(label)
        print(f"{label}: measurement failed\n{out.stderr[-3000:]}", file=sys.stderr, flush=True)
        return {"error": out.stderr.strip()[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_model(r: dict) -> None:
    best = ", ".join(f"{m['mode']} {m.get('latency_s', '?')} s / {m.get('best_images_per_s', '?')} img/s"
                     for m in r["inference"])
    print(f"{r['model']:<20} {r['params_M']:>7.2f} M params, {r['gflops']:>8.2f} GFLOPs; {best}"
          + (f"; training {r['training']['images_per_s']} img/s" if r.get("training") else ""), flush=True)


def save(results: dict, out: Path) -> None:
    write_text(f"{out}.json", json.dumps(results, indent=2))
    write_text(f"{out}.md", markdown(results))


if __name__ == "__main__":
    main()
