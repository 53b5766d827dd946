"""Does SPD help? The paper's claim under the paper's protocol, on synthetic data where every label
is exact: the CPU family's ``cpu_s`` (parsing only), ``cpu_sp`` (+ pose), ``cpu_sd`` (+ DensePose)
and ``cpu_spd`` (all three) trained with the demo's recipe for the same number of steps and the
same schedule, several seeds each, then scored with the official protocol in domain (A val) and
across domains (domain B through the LIP-ATR shared classes).

:func:`run_study` runs it (``benchmarks/study.py`` is its command line), :func:`StudyOptions` says
how.

Arms (each run is one ``spd.training.train`` call, the API behind ``spd train``):

* ``main``: the four variants, every training image with every label, fixed loss weights.
* ``scarce``: parsing labels on ``--parsing-fraction`` (20%) of the training images, pose and
  DensePose on all: ``cpu_s`` (which then sees parsing labels only) against ``cpu_spd``.
* ``balance``: ``cpu_spd`` with uncertainty weighting (``loss.balance: uncertainty``).

Every run also keeps the weights at a quarter of the schedule (``milestones/``) and is evaluated
there too; validation mIoU every ``--val-every`` epochs gives the learning curves; in seed 0 of each
multi-task run, the cosine between the parsing loss's gradient and the other tasks' on the shared
trunk is logged every ``--grad-every`` steps. A held-out set of domain A (another generation seed)
scores the left/right classes on front-view and back-view people and on people behind an occluder.

Resumable, and safe to start twice (two processes share the runs; each run is locked while it
trains and is evaluated, on file systems that can lock): a finished run has ``result.json`` and is skipped; an interrupted one
resumes from its last checkpoint (the sample order and schedule are functions of the step, so the
result does not depend on interruptions or on the machine's load). ``OUT/study.json`` records the
settings; a later call with other settings is refused. Results: ``OUT/runs/<arm>/<variant>/seed<k>/``
(``result.json``, ``eval/<milestone>_<data>/metrics.json``); ``spd report --study OUT`` (also run at
the end) writes ``OUT/report/``.

``--device`` and the training precision (``--precision``, else the recipe's; ``auto`` is 32-true in
a study, so that every variant trains in one precision) are recorded with the
study when they are not the CPU's float32, so that one study's runs share them; each run's record names the device
it trained on. ``--recipe`` trains another config than the demo's; the family of its model preset
names the variants (``configs/study_full.yaml``: the full-size ``s``, ``sp``, ``sd``, ``spd``).
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint

from ..config import from_dict, load_config, to_dict
from ..data.detect import open_dataset
from ..data.synthetic import generate, read_people
from ..evaluation import evaluate_model, load_model, write_result
from ..labels import load_mapping
from ..ops.atomic import write_text
from ..ops.devices import torch_device
from ..ops.errors import InputError, SPDError
from ..ops.locks import file_lock
from ..training import train
from .report import preset_family, study_variants, write_study_report
from .task_gradients import TaskGradientCosine, read_task_gradients

ARMS = ("main", "scarce", "balance")
OCCLUDED = 0.02  # a person counts as occluded when an object covers at least this fraction of the body


def planned_runs(options: "StudyOptions", family: tuple[str, ...]) -> list[dict]:
    """Every run of the study, in the order they are run: seeds outermost, so that a partial study
    already has every variant of the first seeds. FAMILY: the four variants (parsing alone first)."""
    runs = []
    for seed in options.seeds:
        for arm in options.arms:
            if arm == "main":
                variants, overrides = family, []
            elif arm == "scarce":
                variants, overrides = (family[0], family[-1]), [f"data.parsing_fraction={options.parsing_fraction}"]
            else:
                variants, overrides = (family[-1],), ["loss.balance=uncertainty"]
            for variant in (v for v in variants if v in options.variants):
                runs.append({"arm": arm, "variant": variant, "seed": seed,
                             "overrides": [f"model.preset={variant}", f"train.seed={seed}", *overrides]})
    return runs


@dataclass
class StudyOptions:
    """How a study runs (``benchmarks/study.py``'s options, which document each)."""

    out: Path
    steps: int = 3000
    seeds: tuple[int, ...] = (0, 1, 2)
    arms: tuple[str, ...] = ARMS
    recipe: Path | None = None           # a config file; default: the demo's
    variants: tuple[str, ...] | None = None  # default: the recipe's family's four
    parsing_fraction: float = 0.2
    val_every: int = 2
    grad_every: int = 250
    num: int = 0                          # domain A images, train + val (0: the recipe's)
    cross: int = 100
    heldout: int = 400
    threads: int = 1
    workers: int = 1
    device: str = "cpu"
    precision: str | None = None          # default: the recipe's
    report_only: bool = False


def run_folder(out: Path, run: dict) -> Path:
    return out / "runs" / run["arm"] / run["variant"] / f"seed{run['seed']}"


@contextlib.contextmanager
def claimed(folder: Path):
    """Yields True when this process holds the run (a second study process skips it). Where the file
    system cannot lock, this process runs it and says that a second study process must not run."""
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(folder / ".study.lock", wait=False) as lock:
        if lock.unavailable:
            print(f"study: cannot lock {folder} ({lock.unavailable}); run one study process only", file=sys.stderr)
        yield lock.held or bool(lock.unavailable)


def _today(settings: dict) -> dict:
    """A study record's recipe as today's config reads it (keys added since, at their defaults), so
    that a study made before them resumes."""
    try:
        return {**settings, "recipe": to_dict(from_dict(settings["recipe"]))}
    except (KeyError, TypeError, SPDError):
        return settings


def check_same_study(out: Path, settings: dict) -> None:
    record = out / "study.json"
    if not record.is_file():
        write_text(record, json.dumps(settings, indent=1, sort_keys=True) + "\n")
        return
    recorded = _today(json.loads(record.read_text(encoding="utf-8")))
    changed = [k for k in sorted(set(settings) | set(recorded)) if settings.get(k) != recorded.get(k)]
    if changed:
        raise InputError(f"{out} holds a study made with other settings ({', '.join(changed)} differ from {record}); "
                         "use another --out, or the settings it was made with")


def validation_curve(run_dir: Path) -> list[dict]:
    """(step, epoch, val metrics) rows of the run's CSV logs, in step order."""
    rows: dict[int, dict] = {}
    for path in sorted((run_dir / "logs").glob("version_*/metrics.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row.get("val/miou"):
                    step = int(float(row["step"]))
                    rows[step] = {"step": step, "epoch": int(float(row["epoch"])),
                                  **{k: float(v) for k, v in row.items() if k.startswith("val/") and v}}
    return [rows[k] for k in sorted(rows)]


def learned_weights(run_dir: Path) -> list[dict]:
    """The task weights that uncertainty weighting learned, as logged (step, train/weight_<task>)."""
    rows = []
    for path in sorted((run_dir / "logs").glob("version_*/metrics.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                weights = {k: float(v) for k, v in row.items() if k.startswith("train/weight_") and v}
                if weights:
                    rows.append({"step": int(float(row["step"])), **weights})
    return rows


def evaluate_run(run_dir: Path, config, data: dict, milestones: dict[str, Path], device: str) -> dict:
    """Every milestone checkpoint on A val, B (shared classes) and the held-out A set with its
    subsets, on DEVICE, under bf16 autocast when the run trained in a bf16 precision."""
    out = {}
    shared = load_mapping("shared")
    # What the run trained in, as its saved config says (train.precision auto is resolved there).
    trained_in = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))["train"]["precision"]
    precision = "bf16" if trained_in.startswith("bf16") else "32"
    for tag, checkpoint in milestones.items():
        model, _ = load_model(checkpoint, device)
        step = int(torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True).get("global_step", -1))
        scores = {"step": step, "checkpoint": str(checkpoint.relative_to(run_dir))}
        for name, reader, mapping, subsets in (("A_val", data["A_val"], None, None),
                                               ("B_shared", data["B"], shared, None),
                                               ("A_heldout", data["A_heldout"], None, data["subsets"])):
            result = evaluate_model(model, reader, config.eval, mapping, name=f"{tag}", num_workers=0,
                                    source={"checkpoint": str(checkpoint), "step": step}, subsets=subsets,
                                    precision=precision)
            write_result(result, run_dir / "eval" / f"{tag}_{name}", None if mapping else reader.label_space)
            scores[name] = str(Path("eval") / f"{tag}_{name}" / "metrics.json")
        out[tag] = scores
    return out


def run_one(out: Path, run: dict, options: "StudyOptions", base: Path, data: dict) -> dict | None:
    folder = run_folder(out, run)
    config, resolved = load_config(base, [*run["overrides"], f"data.root={data['A_root']}",
                                          f"train.out_dir={folder.parent}", f"train.name={folder.name}",
                                          "train.max_epochs=-1", f"train.max_steps={options.steps}", "train.devices=1",
                                          f"train.val_every_n_epochs={options.val_every}", "train.keep_checkpoints=0",
                                          f"data.num_workers={options.workers}",
                                          *([f"data.synthetic.num={options.num}"] if options.num else []),
                                          *([f"train.precision={options.precision}"] if options.precision else [])])
    quarter = options.steps // 4
    milestone = ModelCheckpoint(dirpath=folder / "milestones", filename="step{step:06d}", auto_insert_metric_name=False,
                                every_n_train_steps=quarter, save_top_k=-1, save_last=False, save_weights_only=True,
                                save_on_train_epoch_end=False)
    callbacks = [milestone]
    gradients = run["seed"] == options.seeds[0] and len(config.model.tasks) > 1
    if gradients:
        callbacks.append(TaskGradientCosine(options.grad_every, folder / "task_gradients.jsonl"))
    resume = (folder / "checkpoints" / "last.ckpt").is_file()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = train(config, device=options.device, resume=resume, progress=False, callbacks=callbacks)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if result.global_step < options.steps:
        raise RuntimeError(f"{folder}: training stopped at step {result.global_step} of {options.steps}")
    milestones = {"quarter": folder / "milestones" / f"step{quarter:06d}.ckpt", "final": result.last_checkpoint}
    missing = [str(p) for p in milestones.values() if not p.is_file()]
    if missing:
        raise RuntimeError(f"{folder}: missing milestone checkpoints {missing}")
    timing = {"train_wall_s_this_call": round(wall, 1), "train_cpu_s_this_call": round(cpu, 1), "resumed": resume}
    eval0 = time.perf_counter()
    evaluations = evaluate_run(folder, config, data, milestones, options.device)
    timing["eval_wall_s"] = round(time.perf_counter() - eval0, 1)
    record = {**run, "steps": options.steps, "batch_size": config.data.batch_size,
              "train_images": len(data["A_train"]), "config": resolved, "timing": timing,
              "evaluations": evaluations, "curve": validation_curve(folder),
              "task_gradients": read_task_gradients(folder / "task_gradients.jsonl") if gradients else [],
              "learned_weights": learned_weights(folder),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch "
                         f"{torch.__version__}{device_name(options.device)}", "date": time.strftime("%Y-%m-%d %H:%M")}
    write_text(folder / "result.json", json.dumps(record, indent=1) + "\n")
    return record


def device_name(device: str) -> str:
    """``, <GPU name>`` for a CUDA device, else nothing (the CPU is named by the rest of the record)."""
    if not device.startswith("cuda"):
        return ""
    return f", {torch.cuda.get_device_name(torch.device(device))}"


def prepare_data(out: Path, base_config, options: "StudyOptions") -> dict:
    synth = base_config.data.synthetic
    roots = {"A_root": out / "data" / "synthetic_A", "B_root": out / "data" / "synthetic_B",
             "A_heldout_root": out / "data" / "synthetic_A_heldout"}
    generate(roots["A_root"], replace(synth, num=options.num or synth.num, domain="A"))
    generate(roots["B_root"], replace(synth, num=options.cross, domain="B", format=None, val_fraction=1.0))
    generate(roots["A_heldout_root"], replace(synth, num=options.heldout, domain="A", seed=synth.seed + 1, val_fraction=1.0))
    people = read_people(roots["A_heldout_root"])
    subsets = {"front": {k for k, p in people.items() if p.view == "front"},
               "back": {k for k, p in people.items() if p.view == "back"},
               "occluded": {k for k, p in people.items() if p.occluded >= OCCLUDED},
               "not_occluded": {k for k, p in people.items() if p.occluded < OCCLUDED}}
    return {**roots, "A_train": open_dataset(roots["A_root"], "train"), "A_val": open_dataset(roots["A_root"], "val"),
            "B": open_dataset(roots["B_root"], "val"), "A_heldout": open_dataset(roots["A_heldout_root"], "val"),
            "subsets": subsets}


def run_study(options: StudyOptions, log: Callable[[str], None] = print) -> list[Path]:
    """Runs every planned run not finished yet (skipping those another study process holds), then
    writes the report; returns its files. ``log`` gets one line per finished run and the report's
    files; warnings (a partial report, a folder that cannot be locked) go to stderr."""
    options.out.mkdir(parents=True, exist_ok=True)
    if not options.report_only:
        # before any data is made: "auto" -> this machine's; "cuda:01" -> "cuda:1"
        options.device = str(torch_device(options.device))
        torch.set_num_threads(options.threads)
        base = options.recipe or Path(str(resources.files("spd.config").joinpath("demo.yaml")))
        base_config, recipe = load_config(base)
        family = study_variants(preset_family(base_config.model.name))
        options.variants = options.variants or list(family)
        if set(options.variants) - set(family):
            raise InputError(f"study: {base} trains {base_config.model.name!r}, of the family {', '.join(family)}; "
                             f"--variants {' '.join(sorted(set(options.variants) - set(family)))} is of the other")
        precision = options.precision or base_config.train.precision  # what the runs train in
        if precision == "auto":
            # Variants are compared in one precision: auto could choose differently for each model.
            precision = options.precision = "32-true"
            log("study: train.precision auto is 32-true in a study, for every variant (--precision bf16-mixed "
                "trains them all in bf16)")
        # A recipe's auto is 32-true in a study: one made when the demo's recipe said 32-true is the same.
        if recipe["train"]["precision"] == "auto":
            recipe = {**recipe, "train": {**recipe["train"], "precision": "32-true"}}
        check_same_study(options.out, {"recipe": recipe, "steps": options.steps, "num": options.num, "parsing_fraction": options.parsing_fraction,
                                    "cross": options.cross, "heldout": options.heldout, "val_every": options.val_every,
                                    "grad_every": options.grad_every,
                                    # not in studies made before these options, which ran the demo's recipe on the CPU in float32
                                    **({"recipe_file": options.recipe.name} if options.recipe else {}),
                                    **({"device": torch.device(options.device).type} if options.device != "cpu" else {}),
                                    **({"precision": precision} if precision != "32-true" else {})})
        data = prepare_data(options.out, base_config, options)
        for run in planned_runs(options, family):
            folder = run_folder(options.out, run)
            if (folder / "result.json").is_file():
                continue
            with claimed(folder) as mine:
                if not mine:
                    continue
                start = time.perf_counter()
                record = run_one(options.out, run, options, base, data)
                log(json.dumps({k: record[k] for k in ("arm", "variant", "seed")}
                                 | {"wall_s": round(time.perf_counter() - start), "rss_mb":
                                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
    # Another study process may still be training some runs (it holds their locks): then the report
    # says it is partial, and which runs it lacks.
    pending = [] if options.report_only else [str(run_folder(options.out, run).relative_to(options.out))
                                           for run in planned_runs(options, family)
                                           if not (run_folder(options.out, run) / "result.json").is_file()]
    if pending:
        print(f"study: the report is partial: {len(pending)} planned run(s) are not finished (another study process "
              f"may be training them: {', '.join(pending[:4])}{' ...' if len(pending) > 4 else ''}); run again with "
              "--report-only when they are", file=sys.stderr)
    written = write_study_report(options.out, options.out / "report", pending=pending)
    for path in written:
        log(f"written: {path}")
    return written

