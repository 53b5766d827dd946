"""``spd model ...``: inspect the model presets."""

from __future__ import annotations

import argparse

from ..model import PRESETS, SPDNet, preset
from .args import SIDE
from ..model.summary import forward_flops, parameter_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="inspect model presets")
    cmds = model.add_subparsers(dest="model_command", required=True, metavar="COMMAND")
    p = cmds.add_parser("summary", help="configuration and parameter counts of a preset")
    p.add_argument("preset", choices=sorted(PRESETS))
    p.add_argument("--flops", type=SIDE, default=None, metavar="SIZE",
                   help="also count the FLOPs of one forward at SIZE x SIZE (slow for ResNet-101 on CPU)")
    p.set_defaults(func=cmd_summary)


def cmd_summary(args: argparse.Namespace) -> int:
    config = preset(args.preset)
    model = SPDNet(config)
    trunk = {"fpn": lambda: f"{config.fpn.encoder} + top-down decoder ({config.fpn.decoder_width} ch), heads "
                           f"{config.fpn.head_width} ch",
             "dilated": lambda: f"dilated ResNet-{config.dilated.depth} ({config.dilated.layout} layout), head width "
                               f"x{config.dilated.width}",
             "schp": lambda: "SCHP's deep-stem ResNet-101 + pyramid pooling + edge module, decoder and fusion head"
             }[config.family]()
    features = ", ".join(f"{f.name} ({f.channels} ch, stride {f.stride})" for f in model.trunk.feature_info)
    print(f"preset {config.name}: tasks {', '.join(config.tasks)}; {trunk}; trunk features {features}; "
          f"{config.refine_stages} refinement stages, training scales {list(config.train_scales)}")
    for task in config.tasks:
        feeders = config.feeders(task)
        print(f"  {task} refinement reads: {task}" + "".join(f", {f}" for f in feeders))
    for name, n in parameter_table(model):
        print(f"  {name:<22} {n:>13,}")
    if args.flops:
        gflops = forward_flops(model, (args.flops, args.flops)) / 1e9
        print(f"  GFLOPs at {args.flops}x{args.flops}, batch 1: {gflops:.1f} (multiply-add = 2)")
    return 0
