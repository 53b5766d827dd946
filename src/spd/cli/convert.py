"""``spd convert jppnet-tf CHECKPOINT_PREFIX --out FILE``: the official JPPNet weights for SPD."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    convert = sub.add_parser("convert", help="convert other implementations' weights into SPD weights files")
    cmds = convert.add_subparsers(dest="convert_command", required=True, metavar="SOURCE")
    p = cmds.add_parser("jppnet-tf", help="the official JPPNet TensorFlow checkpoint -> the jppnet preset",
                        description="Reads model.ckpt-N.index + .data-* (no TensorFlow needed), maps all 624 "
                                    "variables onto the jppnet preset (caffe layout) and writes a safetensors "
                                    "weights file that spd evaluate / spd predict load, with the official input "
                                    "normalisation (BGR, Caffe mean) and test protocol recorded.")
    p.add_argument("checkpoint", help="the checkpoint prefix, e.g. checkpoint/JPPNet-s2/model.ckpt-205632")
    p.add_argument("--out", type=Path, required=True, help="the weights file to write (.safetensors)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    from ..convert.jppnet_tf import convert_checkpoint, official_names, write_converted

    if args.out.exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} exists; use --overwrite to replace it")
    model = convert_checkpoint(args.checkpoint)
    path = write_converted(model, args.out, Path(args.checkpoint).name)
    print(f"converted {len(official_names(model))} variables of {args.checkpoint} -> {path} "
          f"({path.stat().st_size / 1e6:.1f} MB; jppnet preset, caffe layout, input BGR minus the Caffe mean)")
    return 0
