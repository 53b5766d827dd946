"""``spd data ...``: generate, check, summarise and convert datasets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from .args import COUNT, integer, number

from ..data.atr import write_split
from ..data.check import check_dataset, count_images
from ..data.densepose_dump import import_dump
from ..data.detect import open_dataset
from ..data.summary import dataset_stats
from ..data.synthetic import DOMAINS, SynthSpec, generate
from ..densepose_rcnn import DetectorConfig
from ..vis import contact_sheet


def add_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="generate, check, summarise and convert datasets")
    cmds = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")

    p = cmds.add_parser("synth", help="generate the synthetic human dataset in a real format")
    p.add_argument("out", type=Path)
    p.add_argument("--num", type=integer(1, 10_000_000), default=SynthSpec.num,
                   help=f"number of images (default {SynthSpec.num})")
    p.add_argument("--domain", default=SynthSpec.domain, choices=sorted(DOMAINS),
                   help=f"visual domain (default {SynthSpec.domain})")
    p.add_argument("--seed", type=integer(0), default=SynthSpec.seed)
    p.add_argument("--size", type=integer(32, 4096), default=SynthSpec.size,
                   help=f"image height in pixels, 32..4096 (default {SynthSpec.size})")
    p.add_argument("--format", choices=("lip", "atr"), default=None,
                   help="on-disk layout (default: lip for domain A, atr for domain B)")
    p.add_argument("--val-fraction", type=number(0, 1), default=SynthSpec.val_fraction)
    p.add_argument("--no-sheet", action="store_true", help="skip the contact sheet")
    p.set_defaults(func=cmd_synth)

    p = cmds.add_parser("check", help="find the layout and report every problem; exit 1 if any")
    p.add_argument("path", type=Path)
    p.add_argument("--densepose", type=Path, default=None, help="folder of IUV PNGs to check as well")
    p.set_defaults(func=cmd_check)

    p = cmds.add_parser("summary", help="counts and class / keypoint / DensePose statistics of one split")
    p.add_argument("path", type=Path)
    p.add_argument("--split", default="train")
    p.add_argument("--densepose", type=Path, default=None)
    p.set_defaults(func=cmd_summary)

    p = cmds.add_parser("sheet", help="contact sheet PNG: image | parsing | skeleton | IUV per row")
    p.add_argument("path", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--num", type=integer(1), default=8)
    p.add_argument("--densepose", type=Path, default=None)
    p.set_defaults(func=cmd_sheet)

    p = cmds.add_parser("split-atr", help="write the deterministic ATR train/val/test split files")
    p.add_argument("root", type=Path)
    p.add_argument("--out", type=Path, default=None, help="folder for the files (default ROOT/.../splits)")
    p.add_argument("--val", type=integer(0), default=None, help="val images (default 700 for the full release)")
    p.add_argument("--test", type=integer(0), default=None, help="test images (default 1000 for the full release)")
    p.set_defaults(func=cmd_split_atr)

    p = cmds.add_parser("import-densepose", help="convert an apply_net.py dump into full-image IUV PNGs")
    p.add_argument("dump", type=Path)
    p.add_argument("--images", type=Path, required=True, help="folder of the images the dump was made from")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_import_densepose)
    p = cmds.add_parser("densepose", help="DensePose pseudo-labels: DensePose R-CNN over a folder of images, no detectron2",
                        description="Runs a chart-based DensePose R-CNN of detectron2's model zoo (e.g. R50-FPN s1x, "
                                    "model_final_162be9.pkl) over the images and writes OUT/<id>.png (I, 255U, 255V) "
                                    "of the top-scoring person of each, as import-densepose does. Resumable; --shard "
                                    "i/n splits the images between processes.")
    p.add_argument("images", type=Path, help="folder of images (e.g. data/LIP/TrainVal_images)")
    p.add_argument("--weights", type=Path, required=True, help="the model zoo's .pkl (read as numpy arrays only)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--shard", default="0/1", metavar="I/N", help="this process's share: every N-th image from the I-th")
    p.add_argument("--batch-size", type=COUNT, default=1,
                   help="images of one network input shape run through the backbone together (faster on a GPU; "
                        "each file is what the image alone gives: byte for byte on the CPU, up to float rounding on a "
                        "GPU); a batch that fails is run again image by image")
    p.add_argument("--all-people", action="store_true",
                   help="every detected person in each IUV file (the most confident on top), as for photos; "
                        "training's targets keep the top-scoring one (the default)")
    p.add_argument("--min-score", type=number(0, 1), default=DetectorConfig.score_thresh,
                   help=f"detections below this score are dropped (apply_net.py dump's default, {DetectorConfig.score_thresh})")
    p.set_defaults(func=cmd_densepose)


def cmd_densepose(args: argparse.Namespace) -> int:
    from ..densepose_rcnn import load_detector
    from ..densepose_rcnn.pseudo_labels import densepose_pseudo_labels, image_count, no_person_file, parse_shard
    from ..ops.devices import torch_device

    shard = parse_shard(args.shard)
    total = image_count(args.images, shard)  # an empty folder fails before the weights load
    model = load_detector(args.weights, score_thresh=args.min_score).to(torch_device(args.device))
    with tqdm(total=total, desc="densepose", unit="img", disable=None) as bar:
        result = densepose_pseudo_labels(model, args.images, args.out, shard, bar.update,
                                         people=None if args.all_people else 1, weights_name=args.weights.name,
                                         batch_size=args.batch_size)
    print(f"{len(result.written)} IUV maps written to {args.out}; {len(result.no_person)} images with no person "
          f"(listed in {no_person_file(args.out, shard)}); {result.skipped} done before; {len(result.failed)} failed")
    for path, why in result.failed:
        print(f"spd data densepose: failed {path}: {why}", file=sys.stderr)
    return 1 if result.failed else 0


def cmd_synth(args: argparse.Namespace) -> int:
    spec = SynthSpec(num=args.num, domain=args.domain, seed=args.seed, size=args.size, format=args.format,
                     val_fraction=args.val_fraction)
    with tqdm(total=spec.num, desc=f"synth domain {spec.domain}", unit="img", disable=None) as bar:
        manifest = generate(args.out, spec, progress=bar.update)
    print(f"wrote {spec.num} images to {args.out} ({manifest.name})")
    sheet = args.out / "contact_sheet.png"
    if not args.no_sheet and sheet.is_file():  # the data of a spec are the same bytes: so is their sheet
        print(f"contact sheet: {sheet} (already there)")
    elif not args.no_sheet:
        reader = open_dataset(args.out, "train")
        contact_sheet([reader[i] for i in range(min(8, len(reader)))], sheet)
        print(f"contact sheet: {sheet}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    with tqdm(total=count_images(args.path), desc="check", unit="img", disable=None) as bar:
        report = check_dataset(args.path, args.densepose, tick=lambda: bar.update(1))
    print(report.format())
    return 0 if report.ok else 1


def cmd_summary(args: argparse.Namespace) -> int:
    reader = open_dataset(args.path, args.split, args.densepose)
    print(reader.summary())
    with tqdm(total=len(reader), desc="summary", unit="img", leave=False, disable=None) as bar:
        stats = dataset_stats(reader, tick=lambda: bar.update(1))
    print(stats.format(reader.label_space))
    return 0


def cmd_sheet(args: argparse.Namespace) -> int:
    reader = open_dataset(args.path, args.split, args.densepose)
    print(contact_sheet([reader[i] for i in range(min(args.num, len(reader)))], args.out))
    return 0


def cmd_split_atr(args: argparse.Namespace) -> int:
    for split, path in write_split(args.root, args.out, args.val, args.test).items():
        print(f"{split}: {sum(1 for _ in open(path))} ids -> {path}")
    return 0


def cmd_import_densepose(args: argparse.Namespace) -> int:
    result = import_dump(args.dump, args.images, args.out)
    print(f"wrote {len(result.written)} IUV maps to {args.out}; {len(result.no_detection)} images without a "
          f"detection (listed in {args.out / 'no_detection.txt'}); {len(result.no_image)} entries without an image")
    return 0
