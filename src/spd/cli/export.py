"""``spd export CHECKPOINT --format onnx|torchscript|safetensors``."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from ..ops.errors import InputError
from .args import SIDE


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..export.formats import FORMATS

    p = sub.add_parser("export", help="write a trained model as ONNX, TorchScript or safetensors, checked against PyTorch",
                       description="The exported graph takes uint8 RGB [B, 3, H, W] (normalisation inside) and returns "
                                   "the final maps at 1/output_stride; its metadata records the input convention, the "
                                   "normalisation, the labels and (ONNX) the opset. safetensors files load with "
                                   "spd predict / spd.Predictor.")
    p.add_argument("checkpoint", type=Path, help="a training checkpoint (.ckpt) or exported weights (.safetensors)")
    p.add_argument("--format", required=True, choices=sorted(FORMATS))
    p.add_argument("--out", type=Path, default=None, help="output file (default: beside the checkpoint)")
    p.add_argument("--stages", choices=("all", "final"), default=None,
                   help="average every stage's logits (as evaluation) or take the final stage")
    p.add_argument("--input-size", type=SIDE, nargs=2, default=None, metavar=("H", "W"),
                   help="the size the graph is traced and checked at (default: the model's eval.input_size)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from ..export.formats import FORMATS, export_model
    from ..weights import load_checkpoint

    loaded = load_checkpoint(args.checkpoint)
    changes = {k: v for k, v in (("stages", args.stages),
                                 ("input_size", tuple(args.input_size) if args.input_size else None)) if v is not None}
    protocol = replace(loaded.protocol, **changes)
    out = args.out or args.checkpoint.with_suffix(FORMATS[args.format])
    if out.resolve() == args.checkpoint.resolve():
        raise InputError(f"--out {out}: would replace the checkpoint it is exported from")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; use --overwrite to replace it")
    report = export_model(loaded.model, protocol, args.format, out, loaded.experiment)
    print(f"wrote {report['path']} ({report['bytes'] / 1e6:.1f} MB, outputs {', '.join(report['outputs'])}"
          + (f", opset {report['opset']}" if report["opset"] else "") + ")")
    print(f"max abs difference from PyTorch: {report['max_abs_diff']:.3g} on inputs "
          + ", ".join("x".join(map(str, s)) for s in report["checked_shapes"]))
    print(json.dumps(report))
    return 0
