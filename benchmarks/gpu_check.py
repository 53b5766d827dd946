"""Everything that needs a GPU, in one run (about 8 minutes on one GPU), written to one Markdown
report: ``bash benchmarks/gpu_check.sh [--out FILE.md] [--only N ...]``.

1. every preset computes on CUDA what it computes on the CPU (fp32, TF32 off);
2. a bf16 training run's loss falls (``spd.train`` on synthetic data, the full-size ``spd``);
3. ``spd predict``, ``spd evaluate`` and the web page's prediction work on CUDA;
4. DDP with two processes trains the S / SP / SD / SPD variants without unused-parameter errors
   (on two GPUs; on one GPU, on the CPU with gloo, after the other checks);
5. host-device synchronisations (``torch.cuda.set_sync_debug_mode``) in one step of the module
   alone and in one iteration of ``spd train``'s loop (Lightning's logging and callbacks included);
6. training images/s and achieved TFLOP/s of ``spd train``'s step (the LIP recipe's model and
   multi-task loss) against the card's bf16 peak (``spd`` at 384 px, batch 8 and 16, with and
   without channels-last; ``cpu_spd``), inference images/s at batch 1 and 32, and the data
   loader's images/s by worker count, each against its target;
7. how busy ``spd predict`` (bf16, its own process) keeps the GPU over 1000 images (``nvidia-smi``
   samples from its first output on);
8. the memory estimate of ``benchmarks/bench_memory.py`` (fake tensors, the table in
   docs/training.md) beside the peak of the same training step on the card.

Each check records its result or its error and the others go on; the report is rewritten after
every check (a run cut short keeps what finished) and printed at the end. ``--quick`` shrinks every
size (a smoke test of this script itself, also on the CPU with ``--device cpu``).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import gc
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from spd.config import load_config  # noqa: E402
from spd.data.synthetic import SynthSpec, generate  # noqa: E402
from spd.model import PRESETS, SPDNet, preset  # noqa: E402
from spd.ops.atomic import write_text  # noqa: E402
from bench_memory import step_memory  # noqa: E402  (benchmarks/, beside this script)
from bench_speed import timed  # noqa: E402

# Dense bf16 tensor-core peaks (TFLOP/s), from the vendors' data sheets. The first name contained in
# the card's is taken, so the PCIe / NVL cards come before the SXM ones they would otherwise match.
BF16_PEAK = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "H200 NVL": 835.0, "H200": 989.0, "H100": 989.0, "A100": 312.0,
             "L40S": 362.0, "L40": 181.0, "L4": 121.0, "A10": 125.0, "RTX 4090": 165.0}
ROOT = Path(__file__).parents[1]
TARGET_OF_PEAK = 0.35  # spd training at 384 px in bf16
TARGET_SYNCS = 5  # per training step
TARGET_BUSY = 80.0  # % GPU utilisation while spd predict runs


def peak_tflops(name: str) -> float | None:
    return next((v for k, v in BF16_PEAK.items() if k.lower() in name.lower()), None)


def cpu_cores() -> int:
    """The cores this process may use (a container or a SLURM job may allow fewer than the machine has)."""
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Report:
    def __init__(self, path: Path, args: argparse.Namespace):
        self.path, self.sections, self.failed, self.start = path, [], [], time.perf_counter()
        self.args = args

    def run(self, title: str, check) -> None:
        # What an earlier check left (a Trainer and its model sit in reference cycles) would count in
        # this check's peak memory.
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        t0 = time.perf_counter()
        print(f"== {title}", flush=True)
        # A check that hangs (a data-loader worker, a collective) prints every thread's stack.
        faulthandler.dump_traceback_later(self.args.hang_after, exit=False)
        try:
            lines = check()
        except Exception as err:  # noqa: BLE001 - a failed check is recorded, the others go on
            self.failed.append(title)
            lines = [f"**failed**: `{type(err).__name__}: {err}`", "", "```", traceback.format_exc()[-3000:], "```"]
        finally:
            faulthandler.cancel_dump_traceback_later()
        self.sections.append((title, round(time.perf_counter() - t0, 1), lines))
        self.write()

    def write(self) -> None:
        name = device_name(self.args.device)
        head = [f"# GPU check: {name}", "",
                f"`bash benchmarks/gpu_check.sh` on {time.strftime('%Y-%m-%d')}: {name}; torch {torch.__version__}, "
                f"CUDA {torch.version.cuda}; {versions()}; {cpu_cores()} CPU cores; {shared_memory()}; "
                f"total {time.perf_counter() - self.start:.0f} s"
                + (" (--quick: toy sizes, not measurements)" if self.args.quick else "") + ".", ""]
        if self.failed:
            head += [f"Failed: {', '.join(self.failed)}.", ""]
        body = []
        for title, seconds, lines in self.sections:
            body += [f"## {title} ({seconds} s)", "", *lines, ""]
        write_text(self.path, "\n".join(head + body) + "\n")


def device_name(device: str) -> str:
    """The card's name on CUDA, else the processor's."""
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return platform.processor() or platform.machine() or "CPU"


def versions() -> str:
    import lightning
    import torchvision

    return f"torchvision {torchvision.__version__}, Lightning {lightning.__version__}, Python {platform.python_version()}"


def shared_memory() -> str:
    """Data-loader workers pass batches through /dev/shm: a small one kills them (bus error)."""
    with contextlib.suppress(OSError):
        stat = os.statvfs("/dev/shm")
        return f"/dev/shm {stat.f_bavail * stat.f_frsize / 2**30:.1f} GiB free"
    return "no /dev/shm"


def agreement(args) -> list[str]:
    """fp32 with TF32 off: the largest difference relative to the output's scale, per preset."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        return _agreement(args)
    finally:  # as they were: the later checks must not depend on whether this one ran
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _agreement(args) -> list[str]:
    size = 64 if args.quick else 160
    lines = ["| preset | output | max abs diff | max abs value | relative |", "|---|---|---:|---:|---:|"]
    worst = 0.0
    for name in (["cpu_spd", "jppnet"] if args.quick else list(PRESETS)):
        torch.manual_seed(0)
        model = SPDNet(preset(name)).eval()
        x = torch.randn(2, 3, size, size - 16)
        with torch.no_grad():
            cpu = model(x).final
            gpu = model.to(args.device)(x.to(args.device)).final
        for task in ("parsing", "pose", "dp_index", "dp_uv"):
            a, b = getattr(cpu, task), getattr(gpu, task)
            if a is None:
                continue
            diff, scale = float((a - b.float().cpu()).abs().max()), float(a.abs().max())
            worst = max(worst, diff / max(scale, 1e-6))
            lines.append(f"| {name} | {task} | {diff:.2e} | {scale:.3g} | {diff / max(scale, 1e-6):.1e} |")
        del model
    lines += ["", f"Largest relative difference: {worst:.1e} ({'agrees' if worst < 1e-3 else 'DISAGREES'}: threshold 1e-3)."]
    if worst >= 1e-3:
        raise AssertionError("\n".join(lines))
    return lines


def synthetic(args, num: int, size: int, name: str) -> Path:
    root = args.work / name
    generate(root, SynthSpec(num=num, domain="A", seed=0, size=size, val_fraction=0.1))
    return root


def training_data(args) -> tuple[Path, int]:
    """(root, image size) of the data that checks 2, 3, 5 and 6 train on, predict and load: generated by whichever
    runs first, reused by the others (``--only`` runs any of them alone)."""
    size = 96 if args.quick else 384
    return synthetic(args, 40 if args.quick else 200, size, f"synth_{size}"), size


def augmented_training_set(args):
    """The training split of :func:`training_data` as ``spd train`` loads it under the recipe of
    :func:`training_config` (JPPNet's augmentation, dense heatmap targets; checks 5 and 6)."""
    from spd.model import SPDNet
    from spd.training.datamodule import SPDDataModule

    config = training_config(args, "data", 1)
    return SPDDataModule(config, SPDNet(config.model).output_stride).train_dataset()


def training_config(args, name: str, steps: int, *overrides: str):
    """``spd`` (ResNet-18 with narrow heads under ``--quick``) training on :func:`training_data` in
    one process (on a multi-GPU host, not a DDP that would run this script again per rank)."""
    root, size = training_data(args)
    config, _ = load_config(ROOT / "configs" / "synth_A_spd.yaml", [
        f"data.root={root}", f"data.synthetic={{domain: A, num: {40 if args.quick else 200}, size: {size}, seed: 0, "
        "val_fraction: 0.1}", *(["model.dilated.depth=18", "model.dilated.width=0.125"] if args.quick else []),
        "data.batch_size=8", "data.num_workers=4", f"augment.size=[{size}, {size}]", "train.max_epochs=-1",
        f"train.max_steps={steps}", "train.val_every_n_epochs=1000", f"train.out_dir={args.work / 'runs'}",
        f"train.name={name}", f"train.precision={'bf16-mixed' if args.device == 'cuda' else '32-true'}",
        "train.keep_checkpoints=0", "train.sync_batchnorm=false", "train.devices=1", *overrides])
    return config


def bf16_training(args) -> list[str]:
    model = "spd (ResNet-18, heads x0.125: --quick)" if args.quick else "spd"
    config = training_config(args, "bf16", 8 if args.quick else 60, "train.log_every_n_steps=1", "optim.name=adamw",
                             "optim.lr=3e-4", "optim.warmup_steps=5")
    from spd.training import train

    start = time.perf_counter()
    result = train(config, device=args.device, progress=False, overwrite=True)
    seconds = time.perf_counter() - start
    import csv

    from spd.training.loggers import latest_version

    # This run's log: a rerun of the check (overwrite) writes a new version beside the last one's.
    logs = result.run_dir / "logs" / f"version_{latest_version(result.run_dir / 'logs')}" / "metrics.csv"
    with open(logs, newline="") as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["loss"]) for r in rows if r.get("loss")]
    k = max(1, len(losses) // 5)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    args.checkpoint = result.last_checkpoint
    lines = [f"`{model}` at {config.augment.size[0]} px, batch 8, {result.global_step} steps in {seconds:.0f} s (start-up included), "
             f"{config.train.precision}: loss {first:.3f} (first {k} steps) -> {last:.3f} (last {k})."]
    if not last < first:
        raise AssertionError(lines[0] + " The loss did not fall.")
    return lines


def cuda_commands(args) -> list[str]:
    from spd.cli.main import main

    if getattr(args, "checkpoint", None) is None:
        raise RuntimeError("needs the bf16 training check's checkpoint")
    from PIL import Image

    root, _ = training_data(args)
    images = args.work / "predict_inputs"
    shutil.rmtree(images, ignore_errors=True)
    shutil.copytree(next(root.rglob("val_images")), images)
    # A photo over 2048 px: its overlay is drawn scaled down, where CUDA keypoints once met a CPU tensor.
    with Image.open(next(iter(sorted(images.iterdir())))) as photo:
        photo.resize((1700, 2500)).save(images / "large_2500px.jpg")
    out = args.work / "predicted"
    lines = []
    for name, argv in (("spd predict", ["predict", str(args.checkpoint), str(images), "--out", str(out), "--device",
                                        args.device, "--overwrite", "--precision", "bf16"]),
                       ("spd evaluate", ["evaluate", str(args.checkpoint), "--data", str(root), "--split", "val",
                                         "--device", args.device, "--out", str(args.work / "eval")])):
        start = time.perf_counter()
        code = main(argv)
        lines.append(f"- `{name}` on {args.device}: exit {code} in {time.perf_counter() - start:.1f} s"
                     + (" (every output kind; one photo of 1700 x 2500 px)" if name == "spd predict" else ""))
        if code != 0:
            raise AssertionError("\n".join(lines))
    large = sorted(p.name for p in out.rglob("large_2500px*"))
    lines.append(f"- outputs of the large photo: {', '.join(large)}")
    if not any("overlay" in name for name in large):
        raise AssertionError("\n".join(lines) + "\nno overlay written for the photo over 2048 px")
    from spd.predict import Predictor
    from spd.serve import DemoApp

    app = DemoApp(Predictor.from_checkpoint(args.checkpoint, device=args.device, batch_size=1), "check")
    reply = app.predict(next(images.iterdir()).read_bytes(), "x.jpg")
    lines.append(f"- the web page's prediction on {args.device}: panels {sorted(reply['panels'])} in {reply['seconds']} s")
    return lines


DDP_SCRIPT = """
import sys
from spd.config import load_config
from spd.training import train
config, _ = load_config(None, sys.argv[2:])
train(config, device=sys.argv[1], progress=False, overwrite=True)
"""


def ddp(args) -> list[str]:
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    device = "cuda" if gpus >= 2 else "cpu"
    root = synthetic(args, 24, 64, "synth_64")
    script = args.work / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    if device == "cuda":
        lines = ["Two processes on two GPUs (NCCL):", ""]
    elif args.device == "cuda":
        # NCCL cannot put two processes on one GPU. What this check is for, every parameter of each
        # variant getting its gradient in every step, does not depend on the device.
        lines = [f"Two processes on the CPU (gloo): this machine has {gpus} GPU, and DDP on GPUs needs two.", ""]
    else:
        lines = ["Two processes on the CPU (gloo):", ""]
    for name in ("s", "sp", "sd", "spd") + (("cpu_spd",) if args.device == "cpu" or device == "cuda" else ()):
        family = {"fpn": {"decoder_width": 16, "head_width": 16}} if name.startswith("cpu") else \
            {"dilated": {"depth": 18, "width": 0.125, "frozen_bn": False}}
        sets = [f"data.root={root}", "data.synthetic={domain: A, num: 24, size: 64, seed: 0, val_fraction: 0.1}",
                f"model={json.dumps({'preset': name, **family})}", "data.batch_size=4", "data.num_workers=0",
                "augment.size=[64, 48]", "train.max_epochs=-1", "train.max_steps=4", "train.devices=2",
                "train.strategy=ddp", "train.val_every_n_epochs=1000", f"train.out_dir={args.work / 'runs'}",
                f"train.name=ddp_{name}", "train.sync_batchnorm=true"]
        start = time.perf_counter()
        # Its own process group: on a timeout the second rank, which Lightning started, goes too.
        proc = subprocess.Popen([sys.executable, str(script), device, *sets], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stderr = "timed out after 120 s\n" + proc.communicate()[1]
        ok = proc.returncode == 0
        lines.append(f"- `{name}`: {'ok' if ok else 'FAILED'} ({time.perf_counter() - start:.0f} s)"
                     + ("" if ok else f"\n\n```\n{stderr[-2000:]}\n```"))
    if any("FAILED" in line for line in lines):
        raise AssertionError("\n".join(lines))
    return lines


def host_syncs(args) -> list[str]:
    """Synchronisations in one training step of the module (forward, loss, backward, optimiser) with
    the LIP recipe (its loss resizes the labels TensorFlow's way for every stage and scale)."""
    if args.device != "cuda":
        return ["skipped: needs CUDA (torch.cuda.set_sync_debug_mode)"]
    device = torch.device("cuda")
    module, batch = training_module("spd", device), training_batch(args, 4, device)
    optimiser = torch.optim.SGD(module.parameters(), lr=1e-6)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = module.criterion(module(batch["image"]), batch).total
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)

    step()
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode(1)
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    syncs = _sync_messages(caught)
    lines = [f"{len(syncs)} synchronising operation(s) in one step of the module alone (forward, loss, backward, "
             f"SGD; target: at most {TARGET_SYNCS}: {'met' if len(syncs) <= TARGET_SYNCS else 'NOT met'})."]
    lines += [f"- {s}" for s in syncs[:10]]
    return lines + [""] + loop_syncs(args)


def _sync_messages(caught: list) -> list[str]:
    """Where each warning that ``torch.cuda.set_sync_debug_mode(1)`` raised came from (the Python line
    that called the synchronising operation), with its first line."""
    return [f"`{Path(w.filename).name}:{w.lineno}`: {str(w.message).splitlines()[0]}" for w in caught
            if "synchroniz" in str(w.message).lower()]


class _SyncWindow:
    """A Lightning callback that records the synchronising operations from the start of step
    ``first`` to the start of the next: one whole iteration of ``spd train``'s loop (batch transfer,
    training step, logging, optimiser, callbacks), not a logging or checkpoint step."""

    def __init__(self, first: int):
        import lightning as L

        class Window(L.Callback):
            def on_train_batch_start(inner, trainer, *_):
                if trainer.global_step == first and self.context is None and not self.caught:  # once (accumulation)
                    self.context = warnings.catch_warnings(record=True)
                    self.caught = self.context.__enter__()
                    warnings.simplefilter("always")
                    torch.cuda.set_sync_debug_mode(1)
                elif trainer.global_step == first + 1 and self.context is not None:
                    self.close()

        self.callback, self.context, self.caught = Window(), None, []

    def close(self) -> None:
        if self.context is not None:
            torch.cuda.set_sync_debug_mode(0)
            self.context.__exit__(None, None, None)
            self.context = None


def loop_syncs(args) -> list[str]:
    """Synchronisations in one iteration of ``spd.train``'s loop (bf16, the full-size ``spd``)."""
    config = training_config(args, "syncs", 8, "train.log_every_n_steps=50")
    from spd.training import train

    window = _SyncWindow(first=5)
    try:
        train(config, device=args.device, progress=False, overwrite=True, callbacks=[window.callback])
    finally:
        window.close()
    syncs = _sync_messages(window.caught)
    lines = [f"{len(syncs)} synchronising operation(s) in one iteration of `spd train`'s loop (step 5 of 8, bf16, "
             f"batch 8, not a logging step; target: at most {TARGET_SYNCS}: "
             f"{'met' if len(syncs) <= TARGET_SYNCS else 'NOT met'})."]
    return lines + [f"- {s}" for s in syncs[:10]]


def training_module(model_name: str, device: torch.device, channels_last: bool = False):
    """``spd train``'s module for the LIP recipe (the preset, its training scales and the multi-task
    loss of configs/lip_spd.yaml), fresh weights, in channels-last as ``train.channels_last`` makes it."""
    from spd.training.module import SPDModule

    family = ["model.dilated=null"] if model_name.startswith("cpu") else []
    _, resolved = load_config(ROOT / "configs" / "lip_spd.yaml", [f"model.preset={model_name}",
                                                                  "model.backbone_weights=null", *family,
                                                                  f"train.channels_last={str(channels_last).lower()}"])
    torch.manual_seed(0)
    module = SPDModule(resolved, initialise=False).to(device).train()
    if channels_last:
        module.model.to(memory_format=torch.channels_last)
    return module


def training_batch(args, size: int, device: torch.device) -> dict:
    """``size`` augmented training samples with their targets, collated and on ``device``."""
    dataset = augmented_training_set(args)
    batch = torch.utils.data.default_collate([dataset[i % len(dataset)] for i in range(size)])
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def flops_of_step(module, batch: dict) -> float:
    """Floating-point operations of one training step's forward, loss and backward."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        module.criterion(module(batch["image"]), batch).total.backward()
    module.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def _training_row(model_name: str, batch: dict, channels_last: bool, device: torch.device, peak: float | None,
                  quick: bool) -> tuple[str, float, float | None]:
    """One row of the training table: (row, images/s, fraction of the peak)."""
    module = training_module(model_name, device, channels_last)
    batch_size = len(batch["id"])
    flops = flops_of_step(module, batch)
    optimiser = torch.optim.SGD(module.parameters(), lr=1e-6, momentum=0.9)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = module.criterion(module(batch["image"]), batch).total
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)

    for _ in range(2):  # warm-up, cuDNN's algorithm search included, before the peak is reset
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(step, device, 0, 2 if quick else 5)
    tflops = flops / seconds / 1e12
    memory = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    row = (f"| {model_name} | {batch_size} | {channels_last} | {seconds:.3f} | {batch_size / seconds:.1f} | {tflops:.1f} | "
           f"{f'{100 * tflops / peak:.0f}%' if peak else '–'} | {memory:.1f} |")
    return row, batch_size / seconds, tflops / peak if peak else None


def _inference_row(model_name: str, batch: int, size: int, device: torch.device, quick: bool) -> str:
    model = SPDNet(preset(model_name)).to(device).eval()
    x = torch.randn(batch, 3, size, size, device=device)

    def infer():
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            model.predict_stages(x)

    return f"| {model_name} | {batch} | {batch / timed(infer, device, 2, 3 if quick else 10):.1f} |"


def speed(args) -> list[str]:
    device = torch.device(args.device)
    peak = args.peak_tflops or (peak_tflops(device_name(args.device)) if device.type == "cuda" else None)
    size = 96 if args.quick else 384
    lines = [f"Training steps as `spd train` takes them with the LIP recipe (the preset's training scales, the "
             f"multi-task loss on augmented synthetic samples and their targets, backward, SGD; bf16 autocast on "
             f"CUDA; no loader: the batch is on the device), {size} px; achieved TFLOP/s count a multiply-add as 2; "
             f"the card's dense bf16 peak: {peak or 'unknown'} TFLOP/s.", "",
             "| model | batch | channels-last | step (s) | images/s | TFLOP/s | of peak | peak memory (GiB) |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    spd_rates, spd_fractions, collated = [], [], {}
    for model_name, sizes in (("spd", (8, 16) if not args.quick else (2,)), ("cpu_spd", (16,) if not args.quick else (2,))):
        for batch in sizes:
            if batch not in collated:  # augmented once, trained on by every row of this size
                collated[batch] = training_batch(args, batch, device)
            for channels_last in (False, True):
                row, rate, fraction = _training_row(model_name, collated[batch], channels_last, device, peak, args.quick)
                lines.append(row)
                if model_name == "spd":
                    spd_rates.append(rate)
                    spd_fractions.append((fraction, batch, channels_last))
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    best = max((f for f in spd_fractions if f[0] is not None), default=None)
    if best is not None:
        lines += ["", f"Target: `spd` at {size} px in bf16 at {TARGET_OF_PEAK:.0%} or more of the peak: best "
                      f"{best[0]:.0%} (batch {best[1]}, channels-last {best[2]}): "
                      f"{'met' if best[0] >= TARGET_OF_PEAK else 'NOT met'}."]
    lines += ["", "Inference (`predict_stages`, bf16 autocast on CUDA, one scale):", "",
              "| model | batch | images/s |", "|---|---:|---:|"]
    for model_name in ("spd", "cpu_spd"):
        for batch in ((1, 32) if not args.quick else (1, 2)):
            lines.append(_inference_row(model_name, batch, size, device, args.quick))
    cores = cpu_cores()
    lines += ["", f"Data loader (JPPNet's augmentation, targets included, synthetic {size}-px images, batch 8; timed "
              "after each worker's first batch, so that the workers' start is not counted):", "",
              "| workers | images/s |", "|---:|---:|"]
    dataset = augmented_training_set(args)
    rates = {}
    for workers in ((0, 2) if args.quick else sorted({0, 2, 4, 8, min(16, cores), cores})):
        # One batch per worker untimed (start-up; the others' prefetched batches are nearly done by
        # then), then eight per worker timed, drawn with replacement from the 180 images.
        untimed, timed_batches = max(1, workers), 8 * max(1, workers)
        sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=8 * (untimed + timed_batches))
        batches = iter(torch.utils.data.DataLoader(dataset, batch_size=8, num_workers=workers, sampler=sampler,
                                                   pin_memory=device.type == "cuda"))  # as training loads them
        for _ in range(untimed):
            next(batches)
        start, count = time.perf_counter(), 0
        for batch in batches:
            count += len(batch["id"])
        rates[workers] = count / (time.perf_counter() - start)
        lines.append(f"| {workers} | {rates[workers]:.1f} |")
    need = max(spd_rates)
    fastest = max(rates, key=rates.get)
    lines += ["", f"Target: the loader feeds `spd` training with the workers this machine has ({cores} cores): "
                  f"{rates[fastest]:.1f} images/s at best ({fastest} workers) against the {need:.1f} images/s of the "
                  f"fastest training row above: {'met' if rates[fastest] >= need else 'NOT met'}."]
    return lines


def predict_busy(args) -> list[str]:
    if args.device != "cuda" or getattr(args, "checkpoint", None) is None:
        return ["skipped: needs CUDA and the bf16 training check's checkpoint"]
    count = 1000 if not args.quick else 40
    root = args.work / f"predict_{count}"
    # 200 people rendered (rendering 1000 would cost most of a minute of the budget), each saved
    # under five names: spd predict reads, decodes and writes every file as if it were another.
    generate(root, SynthSpec(num=count // 5, domain="A", seed=5, size=384, val_fraction=1.0))
    rendered = sorted(p for p in next(root.rglob("val_images")).iterdir() if p.is_file())
    folder = args.work / f"predict_{count}_images"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for copy in range(5):
        for path in rendered:
            (folder / f"{path.stem}_{copy}{path.suffix}").write_bytes(path.read_bytes())
    out = args.work / f"predicted_{count}"
    shutil.rmtree(out, ignore_errors=True)
    # The command as a user runs it: its own process (none of this script's settings, cudnn.benchmark
    # among them), every output kind it writes by default.
    command = [sys.executable, "-m", "spd", "predict", str(args.checkpoint), str(folder), "--out", str(out),
               "--device", "cuda", "--batch-size", "16", "--precision", "bf16"]
    samples, stop = [], threading.Event()
    query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]

    def utilisation(nvidia_smi: list[str]) -> float:
        return float(subprocess.run(nvidia_smi, capture_output=True, text=True, timeout=5).stdout.split()[0])

    with contextlib.suppress(Exception):  # this process's GPU, whatever CUDA_VISIBLE_DEVICES says
        by_id = [*query, f"--id=GPU-{torch.cuda.get_device_properties(0).uuid}"]
        utilisation(by_id)
        query = by_id

    def sample():
        # From the first written output on: the start (loading the checkpoint, building the model)
        # keeps the GPU idle for reasons other than the pipeline.
        while not stop.is_set() and not any(out.rglob("*.png")):
            time.sleep(0.2)
        while not stop.is_set():
            with contextlib.suppress(Exception):
                samples.append(utilisation(query))
            time.sleep(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    thread.start()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    stop.set()
    thread.join()
    if proc.returncode != 0:
        raise AssertionError(f"`spd predict` exited {proc.returncode}:\n\n```\n{proc.stderr[-3000:]}\n```")
    busy = sorted(samples)[len(samples) // 2] if samples else float("nan")
    mean = sum(samples) / len(samples) if samples else float("nan")
    verdict = ("met" if busy >= TARGET_BUSY else "NOT met") if samples else "not measured: nvidia-smi gave no sample"
    which = "this process's GPU" if any(a.startswith("--id=") for a in query) else "the first GPU nvidia-smi lists"
    return [f"`spd predict` over {sum(1 for _ in folder.iterdir())} images of 384 px (batch 16, bf16, every output "
            f"kind it writes by default): {seconds:.0f} s, start-up included; GPU utilisation from nvidia-smi every "
            f"0.5 s ({which}) from the first output written: median {busy:.0f}%, mean {mean:.0f}% over {len(samples)} samples "
            f"(target: at least {TARGET_BUSY:.0f}%: {verdict})."]


def memory(args) -> list[str]:
    """The estimate (fake tensors, on the CPU) against the same step on the device."""
    preset, size = ("cpu_s", 64) if args.quick else ("spd", 384)
    lines = [f"One `spd train` step with the LIP recipe, `{preset}` at {size} px, bf16-mixed, the second of two "
             "(GiB; *estimated*: `benchmarks/bench_memory.py` on fake tensors; *tracked*: the same count on the "
             "device's tensors; *allocator*: `torch.cuda.max_memory_allocated`, which adds workspaces).", "",
             "| batch | estimated | tracked | allocator |", "|---:|---:|---:|---:|"]
    for batch in (2,) if args.quick else (8,):  # one batch: about 30 s of the 8-minute budget
        estimate = step_memory(preset, batch, size, "bf16-mixed", device="fake")
        try:
            measured = step_memory(preset, batch, size, "bf16-mixed", device=args.device)
            cells = f"{measured['peak_GiB']:.2f} | {measured.get('allocated_GiB', float('nan')):.2f}"
        except torch.OutOfMemoryError:
            cells = "out of memory | out of memory"
        lines.append(f"| {batch} | {estimate['peak_GiB']:.2f} | {cells} |")
        gc.collect()  # the last run's model sits in reference cycles: free it before the next one
        if args.device == "cuda":
            torch.cuda.empty_cache()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="the Markdown report (default: benchmarks/results_gpu_<card>.md)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", type=Path, default=Path("runs/gpu_check"))
    parser.add_argument("--quick", action="store_true", help="toy sizes: a smoke test of this script")
    parser.add_argument("--only", nargs="+", default=None, choices=[str(n) for n in range(1, 9)],
                        help="run only these checks (by number, 1-8)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the card's dense bf16 peak in TFLOP/s (default: from a table of data-sheet values)")
    parser.add_argument("--hang-after", type=float, default=240.0,
                        help="seconds after which a check still running prints every thread's stack (it goes on)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (use --device cpu --quick to try the script itself)", file=sys.stderr)
        return 2
    card = device_name(args.device).replace(" ", "_") if args.device == "cuda" else "cpu"
    out = args.out or ROOT / "benchmarks" / f"results_gpu_{card}.md"
    args.work.mkdir(parents=True, exist_ok=True)
    # As spd train sets it; once here, so that no check's speed or memory depends on which ran before.
    torch.backends.cudnn.benchmark = True
    report = Report(out, args)
    checks = [("1. CPU and CUDA agree", agreement), ("2. bf16 training", bf16_training),
              ("3. predict, evaluate and the web page on CUDA", cuda_commands), ("4. DDP, two processes", ddp),
              ("5. host syncs in a training step", host_syncs), ("6. speed", speed), ("7. spd predict keeps the GPU busy", predict_busy),
              ("8. memory of a training step: estimate and card", memory)]
    numbered = list(enumerate(checks, start=1))
    if args.device == "cuda" and torch.cuda.device_count() < 2:  # DDP then runs on the CPU: last, after every GPU check
        numbered = [c for c in numbered if c[0] != 4] + [c for c in numbered if c[0] == 4]
    for number, (title, check) in numbered:
        if args.only is None or str(number) in args.only:
            report.run(title, lambda check=check: check(args))
    report.write()
    print(out.read_text(), end="")
    print(f"report: {out}" + (f"; failed: {', '.join(report.failed)}" if report.failed else ""))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
