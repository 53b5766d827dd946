"""``spd convert jppnet-tf CHECKPOINT_PREFIX --out FILE``: the official JPPNet weights for SPD;
``spd convert schp FILE.pth --out FILE``: SCHP's published LIP / ATR / Pascal weights."""

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
    p = cmds.add_parser("schp", help="SCHP's published checkpoint (LIP, ATR or Pascal) -> the schp_<dataset> preset",
                        description="Reads an SCHP checkpoint (a torch.save dict with 'state_dict'; only tensors and "
                                    "plain data are loaded, no code in the file runs), maps it onto the schp family "
                                    "(SCHP's network with InPlaceABN computed as its op does) and writes a "
                                    "safetensors weights file with the label space, SCHP's input normalisation "
                                    "(BGR, its mean and std) and its test protocol recorded.")
    p.add_argument("checkpoint", type=Path, help="e.g. exp-schp-201908261155-lip.pth")
    p.add_argument("--dataset", choices=("lip", "atr", "pascal"), default=None,
                   help="the dataset it was trained on (default: told by its number of classes: 20, 18, 7)")
    p.add_argument("--out", type=Path, required=True, help="the weights file to write (.safetensors)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_convert_schp)


def cmd_convert(args: argparse.Namespace) -> int:
    from ..convert.jppnet_tf import convert_checkpoint, official_names, write_converted

    if args.out.exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} exists; use --overwrite to replace it")
    model = convert_checkpoint(args.checkpoint)
    path = write_converted(model, args.out, Path(args.checkpoint).name)
    print(f"converted {len(official_names(model))} variables of {args.checkpoint} -> {path} "
          f"({path.stat().st_size / 1e6:.1f} MB; jppnet preset, caffe layout, input BGR minus the Caffe mean)")
    return 0


def cmd_convert_schp(args: argparse.Namespace) -> int:
    from ..convert.schp import convert_checkpoint, write_converted

    if args.out.exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} exists; use --overwrite to replace it")
    model = convert_checkpoint(args.checkpoint, args.dataset)
    path = write_converted(model, args.out, args.checkpoint.name)
    space = model.config.parsing_space
    print(f"converted {args.checkpoint} -> {path} ({path.stat().st_size / 1e6:.1f} MB; schp_{space} preset, "
          f"{model.config.num_parsing_classes} classes, SCHP's input normalisation and test protocol)")
    return 0
