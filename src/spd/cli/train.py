"""``spd train CONFIG``, ``spd evaluate``, ``spd report``."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from ..config import load_config
from ..data.detect import open_dataset
from ..evaluation.evaluate import BATCH_SIZE
from ..labels import PARSING_SPACES, load_mapping
from ..ops.errors import InputError
from .args import integer
from .predict import add_test_time_flags, test_time_overrides


TRAIN_FLAGS = (
    ("--devices", "devices", str, "processes per node: a number (default 1), or 'auto' for every visible GPU"),
    ("--num-nodes", "num_nodes", int, "machines taking part (each runs the same command)"),
    ("--strategy", "strategy", str, "Lightning strategy, e.g. ddp"),
    ("--precision", "precision", str, "e.g. bf16-mixed, 16-mixed, 32-true, or auto (bf16-mixed where a training step "
                                      "is faster so on this machine)"),
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("config", type=Path)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.max_epochs=3 (repeatable)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    # Shortcuts for the train section, so that one command scales from a laptop to several nodes.
    for flag, key, kind, text in TRAIN_FLAGS:
        p.add_argument(flag, dest=key, type=kind, default=None, help=f"{text} (sets train.{key})")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue the run from its last checkpoint (or the one given)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run of this name (its checkpoints are set aside, and deleted once the new run has written its first checkpoint)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint, or saved predictions, on a dataset split")
    p.add_argument("checkpoint", type=Path, nargs="?", help="a training checkpoint (omit with --predictions)")
    p.add_argument("--predictions", type=Path, default=None, help="folder of <id>.png parsing predictions of any method")
    p.add_argument("--pred-space", choices=PARSING_SPACES, default=None, help="label space of --predictions (default: the data's)")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--densepose", type=Path, default=None)
    add_test_time_flags(p)
    p.add_argument("--map", choices=("shared", "super", "parts"), default=None,
                   help="cross-dataset label mapping (parts: a Pascal-Person-Part model on LIP or ATR data)")
    p.add_argument("--mapping", type=Path, default=None, help="a mapping YAML file (default: the shipped LIP-ATR one)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: RUN/eval/<checkpoint>_<data>_<split>[_map-M], or beside a "
                        "weights file or predictions folder)")
    p.add_argument("--name", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=integer(0), default=2, help="data loader processes (0: load in this one)")
    p.add_argument("--batch-size", type=integer(1), default=BATCH_SIZE,
                   help=f"images per forward pass, of any sizes (default {BATCH_SIZE}; the metrics do not depend on it)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("report", help="collect evaluation JSONs into a comparison table and figure, or report a study")
    p.add_argument("results", type=Path, nargs="*", help="metrics.json files")
    p.add_argument("--study", type=Path, default=None, metavar="OUT",
                   help="the folder of a study (benchmarks/study.py): its tables, curves and gradient figure")
    p.add_argument("--out", type=Path, default=None, help="output folder (default with --study: OUT/report)")
    p.set_defaults(func=cmd_report)


def cmd_train(args: argparse.Namespace) -> int:
    from ..training import train

    flags = [f"train.{key}={getattr(args, key)}" for _, key, _, _ in TRAIN_FLAGS if getattr(args, key) is not None]
    config, _ = load_config(args.config, [*args.overrides, *flags])
    result = train(config, name=args.config.stem, device=args.device, resume=args.resume,
                   overwrite=args.overwrite)
    print(f"run: {result.run_dir}  last checkpoint: {result.last_checkpoint}  steps: {result.global_step}")
    if result.metrics:  # none when a resumed run had nothing left to do (a warning said so)
        print(json.dumps({k: round(v, 4) for k, v in result.metrics.items()}, indent=1))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate_model, evaluate_predictions, write_result
    from ..evaluation.evaluate import default_eval_dir
    from ..ops.devices import torch_device
    from ..weights import load_checkpoint

    if (args.checkpoint is None) == (args.predictions is None):
        raise InputError("give either a CHECKPOINT or --predictions DIR")
    reader = open_dataset(args.data, args.split, args.densepose)
    mapping = load_mapping(args.map, args.mapping or "lip_atr.yaml") if args.map else None
    with tqdm(total=len(reader), desc="evaluate", unit="img", disable=None) as bar:
        if args.predictions is not None:
            result = evaluate_predictions(args.predictions, reader, args.pred_space, mapping, args.name or "",
                                          tick=lambda: bar.update(1))
            out = args.out or default_eval_dir(args.predictions, reader, args.map, predictions=True)
        else:
            loaded = load_checkpoint(args.checkpoint, torch_device(args.device))
            model, protocol = loaded.model, replace(loaded.protocol, **test_time_overrides(args))
            name = args.name or model.config.name
            source = {"checkpoint": str(args.checkpoint), **loaded.progress}
            result = evaluate_model(model, reader, protocol, mapping, name, source, args.workers,
                                    tick=lambda: bar.update(1), precision=args.precision, batch_size=args.batch_size)
            out = args.out or default_eval_dir(args.checkpoint, reader, args.map)
    paths = write_result(result, out, None if mapping else reader.label_space)
    print(result.markdown())
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..evaluation import write_report
    from ..study import write_study_report

    if bool(args.results) == bool(args.study):
        raise InputError("give metrics.json files, or --study OUT")
    if args.study:
        written = write_study_report(args.study, args.out)
        print(written[0].read_text(encoding="utf-8"))
        print("written: " + ", ".join(str(p) for p in written))
        return 0
    if args.out is None:
        raise InputError("--out is required with metrics.json files")
    paths = write_report(args.results, args.out)
    print(paths["markdown"].read_text())
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0
