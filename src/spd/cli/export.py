"""``spd export CHECKPOINT --format onnx|torchscript|safetensors``."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from ..ops.errors import InputError
from .args import COUNT, SIDE


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
    p.add_argument("--int8", action="store_true",
                   help="ONNX only: also write OUT with .int8.onnx, statically quantised for ONNX Runtime on a CPU, "
                        "and report its agreement with float32 and both latencies (needs --calibrate)")
    p.add_argument("--calibrate", type=Path, default=None, metavar="FOLDER",
                   help="photos whose activations set the int8 ranges (the first --calibrate-count, by name)")
    p.add_argument("--calibrate-count", type=COUNT, default=32, metavar="N")
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
    if args.int8 and (args.format != "onnx" or args.calibrate is None):
        raise InputError("--int8 quantises the ONNX file with ranges measured on photos: give --format onnx and "
                         "--calibrate FOLDER")
    int8_out = out.with_suffix(".int8.onnx") if args.int8 else None
    for path in (out, int8_out):
        if path is not None and path.exists() and not args.overwrite:
            raise FileExistsError(f"{path} exists; use --overwrite to replace it")
    images = None
    if args.int8:  # the photos are read before anything is written: a bad folder leaves nothing
        from ..export.int8 import calibration_images
        images = calibration_images(args.calibrate, protocol.input_size, args.calibrate_count)
    report = export_model(loaded.model, protocol, args.format, out, loaded.experiment)
    print(f"wrote {report['path']} ({report['bytes'] / 1e6:.1f} MB, outputs {', '.join(report['outputs'])}"
          + (f", opset {report['opset']}" if report["opset"] else "") + ")")
    print(f"max abs difference from PyTorch: {report['max_abs_diff']:.3g} on inputs "
          + ", ".join("x".join(map(str, s)) for s in report["checked_shapes"]))
    if int8_out is not None:
        from ..export.int8 import compare, quantize

        quantize(out, int8_out, images)
        report["int8"] = {"path": str(int8_out), "bytes": int8_out.stat().st_size,
                          **compare(out, int8_out, images)}
        q = report["int8"]
        agreement = "" if q["parsing_agreement"] is None else f"parsing classes kept on {100 * q['parsing_agreement']:.2f}% " \
                                                              "of the output cells, "
        print(f"wrote {int8_out} ({q['bytes'] / 1e6:.1f} MB): {agreement}one photo in ONNX Runtime "
              f"{q['latency_s']['int8']:.3f} s against {q['latency_s']['float32']:.3f} s in float32 "
              f"({q['calibration_photos']} calibration photos)")
    print(json.dumps(report))
    return 0
