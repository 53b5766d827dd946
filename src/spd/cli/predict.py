"""``spd predict CHECKPOINT INPUT... --out DIR``: a trained model on images, folders and videos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..inference import INFERENCE_PRECISIONS
from ..inference.settings import INTERPOLATIONS, POSE_DECODERS, RESIZE_POLICIES
from ..densepose_rcnn import DetectorConfig
from ..ops.errors import InputError
from .args import COUNT, SCALE, SIDE, number

SETTINGS_HELP = "test-time settings (default: those recorded with the model)"


def add_test_time_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``evaluate`` and ``predict``; each left out keeps the model's recorded value."""
    g = p.add_argument_group(SETTINGS_HELP)
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="test-time mirror (with left/right swaps)")
    g.add_argument("--scales", type=SCALE, nargs="+", default=None, help="test-time scales, e.g. 0.75 1 1.25")
    g.add_argument("--input-size", type=SIDE, nargs=2, default=None, metavar=("H", "W"),
                   help="the network's input (every image is resized to it), 8..8192 px per side")
    g.add_argument("--precision", choices=INFERENCE_PRECISIONS, default="auto",
                   help="the network in float32, under bfloat16 autocast, or auto: bf16 where it is faster for this "
                        "model on this machine (GPUs; CPUs with AMX, measured once and remembered), else float32")
    g.add_argument("--stages", choices=("all", "final"), default=None)
    g.add_argument("--resize", choices=RESIZE_POLICIES, default=None,
                   help="squash to the input size (JPPNet), letterbox (keeps the aspect ratio) or affine (SCHP's crop; "
                        "with --interpolation align_corners, and only with it)")
    g.add_argument("--pose-decoder", choices=POSE_DECODERS, default=None,
                   help="subpixel (bilinear heatmaps, refined peak), argmax, or jppnet (the official evaluation)")
    g.add_argument("--interpolation", choices=INTERPOLATIONS, default=None,
                   help="resizes to the network and back: half_pixel, tf_legacy (as JPPNet's evaluation) or "
                        "align_corners (SCHP's, with --resize affine)")


def test_time_overrides(args: argparse.Namespace) -> dict[str, Any]:
    values = {"flip": args.flip, "scales": args.scales, "input_size": args.input_size, "stages": args.stages,
              "resize": args.resize, "pose_decoder": args.pose_decoder, "interpolation": args.interpolation}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if v is not None}


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..predict.writers import all_kinds

    p = sub.add_parser("predict", help="run a trained model on images, folders, globs and videos",
                       description="Writes, per image, NAME_parsing.png (class ids, the model's label-space palette), NAME_labels.png "
                                   "(with --labels), NAME_mask.png (with --mask), NAME_keypoints.json, NAME_iuv.png and NAME_overlay.jpg; per "
                                   "video, NAME_overlay.mp4, NAME_keypoints.json with one entry per frame, and a folder "
                                   "NAME_<kind>/ of per-frame files (000000.png ...) for each image output.")
    p.add_argument("checkpoint", type=Path, help="a training checkpoint (.ckpt) or exported weights (.safetensors); or "
                                                 "a DensePose model-zoo .pkl (DensePose R-CNN, e.g. model_final_162be9.pkl): "
                                                 "NAME_iuv.png as detectron2's, and the overlay")
    p.add_argument("inputs", nargs="+", help="image or video files, folders (searched recursively) or glob patterns")
    p.add_argument("--out", type=Path, required=True, help="output folder (input folders' structure is kept)")
    p.add_argument("--outputs", default=None, help=f"comma-separated subset of {','.join(all_kinds())} "
                                                   "(default: every one the model's tasks allow)")
    p.add_argument("--labels", default=None, metavar="SET",
                   help="also write NAME_labels.png relabelled to a built-in set (atr, lip) or a YAML file")
    p.add_argument("--mask", default=None, metavar="CLASSES",
                   help="also write NAME_mask.png (0 / 255) of these classes of the model's label space and named "
                        "sets, comma-separated: upper-body, lower-body, dresses (try-on's garment regions), person; "
                        "e.g. --mask upper-body,scarf")
    p.add_argument("--mask-dilate", type=int, default=0, metavar="PX", help="grow the mask by this many pixels")
    p.add_argument("--min-score", type=number(0, 1), default=0.2, help="joints below this score are not drawn (0..1)")
    p.add_argument("--batch-size", type=COUNT, default=4)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    add_test_time_flags(p)
    add_densepose_rcnn_flags(p)
    p.set_defaults(func=cmd_predict)


def add_densepose_rcnn_flags(p: argparse.ArgumentParser) -> None:
    """Flags of a DensePose model-zoo ``.pkl`` in place of an SPD model (``predict``, ``serve``)."""
    g = p.add_argument_group("DensePose R-CNN (a .pkl model)")
    g.add_argument("--all-people", action="store_true",
                   help="every detected person in the IUV (the more confident on top); default: the top-scoring one")
    g.add_argument("--detection-score", type=number(0, 1), default=None,
                   help=f"detections below this score are dropped (default {DetectorConfig.score_thresh}, apply_net.py's)")


def load_predictor(args: argparse.Namespace, batch_size: int):
    """An SPD model file's Predictor, or a DensePose model-zoo file's DensePosePredictor; flags
    that belong to the other kind are errors."""
    from ..predict import DensePosePredictor, Predictor

    overrides = test_time_overrides(args)
    if args.checkpoint.suffix.lower() == ".pkl":
        flags = [f"--{k.replace('_', '-')}" if k != "flip" else "--flip/--no-flip" for k in sorted(overrides)]
        if args.precision != "auto":
            flags.append("--precision")
        if flags:
            raise InputError(f"{flags[0]}: test-time settings apply to SPD models; {args.checkpoint} is a DensePose "
                             "R-CNN (it resizes photos as detectron2 does, and runs in float32)")
        return DensePosePredictor.from_zoo(args.checkpoint, args.device, batch_size,
                                           people=None if args.all_people else 1, min_score=args.detection_score)
    if args.all_people or args.detection_score is not None:
        flag = "--all-people" if args.all_people else "--detection-score"
        raise InputError(f"{flag} applies to DensePose R-CNN models (.pkl), not to {args.checkpoint}")
    return Predictor.from_checkpoint(args.checkpoint, args.device, batch_size, args.precision, **overrides)


def cmd_predict(args: argparse.Namespace) -> int:
    from ..labels.masks import parse_mask
    from ..labels.relabel import load_relabel
    from ..predict.files import predict_files
    from ..predict.inputs import expand_inputs
    from ..predict.video import VideoError, predict_video
    from ..predict.writers import VIDEO_SUFFIX, OutputSpec, choose_kinds, output_paths
    from ..ops.atomic import remove_leftovers

    relabel = load_relabel(args.labels) if args.labels else None
    items, problems, excluded = expand_inputs(args.inputs, exclude=args.out)
    if excluded:
        print(f"spd predict: not reading {excluded} (the output folder lies inside an input folder)", file=sys.stderr)
    predictor = load_predictor(args, args.batch_size)
    space = predictor.parsing_space
    if relabel is not None and relabel.source != space:
        raise InputError(f"--labels {args.labels}: maps {relabel.source} classes, but the model predicts "
                         f"{space or 'no parsing'} classes")
    requested = [k.strip() for k in args.outputs.split(",") if k.strip()] if args.outputs else None
    if args.mask and space is None:
        raise InputError(f"--mask: {args.checkpoint} predicts no parsing (DensePose R-CNN gives DensePose only)")
    mask = parse_mask(args.mask, space, args.mask_dilate) if args.mask else None
    if mask is None and args.mask_dilate:
        raise InputError("--mask-dilate grows the --mask: give --mask too")
    kinds = choose_kinds(requested, predictor.tasks, relabel, mask)
    spec = OutputSpec(kinds, space, relabel, args.min_score, mask=mask)

    plans = []
    for item in items:
        paths = output_paths(args.out, item.name, kinds, item.video)
        existing = [p for p in paths.values() if p.exists()]
        if existing and not args.overwrite:
            raise FileExistsError(f"{existing[0]} exists ({len(existing)} output(s) of {item.path}); "
                                  "use --overwrite to replace, or another --out")
        plans.append((item, paths))
    # What a killed run left while writing these outputs (hidden temporary files) goes now.
    left = [p for item, paths in plans for path in paths.values() for p in remove_leftovers(path)]
    if left:
        print(f"spd predict: removed {len(left)} temporary file(s) an interrupted run left, e.g. {left[0]}",
              file=sys.stderr)

    def skipped(reason: str) -> None:
        print(f"spd predict: skipped {reason}", file=sys.stderr)

    for problem in problems:
        skipped(problem)

    images = [(item.path, paths) for item, paths in plans if not item.video]
    videos = [(item, paths) for item, paths in plans if item.video]
    with tqdm(total=len(images), desc="predict", unit="img", disable=None) as bar:
        done = predict_files(predictor, images, spec, skipped, bar.update)
    for item, paths in videos:
        with tqdm(desc=f"video {item.path.name}", unit="frame", disable=None) as bar:
            try:
                predict_video(predictor, item.path, paths.get("overlay"), paths.get("keypoints"), spec, bar.update,
                              {k: p for k, p in paths.items() if k not in VIDEO_SUFFIX})
                done += 1
            except VideoError as err:
                skipped(str(err))
    total = len(plans) + len(problems)
    print(f"predicted {done} of {total} inputs into {args.out}"
          + (f"; {total - done} skipped (see above)" if done < total else ""))
    return 1 if done < total else 0
