"""DensePose R-CNN on a CPU: images per second of ``spd.densepose_rcnn`` (DensePose for every
detection, and for the top one only, as ``spd data densepose`` runs it) and of detectron2's own
``DefaultPredictor`` on the same photos in the same run (with ``--detectron2``: its sources,
importable; its C++ ops are not needed by this model).

    python benchmarks/bench_densepose.py [--weights model_final_162be9.pkl] [--photos FOLDER]
        [--detectron2 PATH/TO/detectron2] [--detections 4] [--repeat 2] [--out benchmarks/results_densepose_cpu]

Without ``--weights`` the weights are random (the test's). Photos are resized as DensePose's test
protocol says (short side 800, long side at most 1333), so the photo's own size matters little.
At most ``--detections`` detections per photo on both sides (random weights find many; the head
costs about 15 GFLOP per detection). Best of ``--repeat`` passes after a warm-up one, wall seconds.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see spd/cli/__init__.py

import torch

from spd.data.image_io import read_image
from spd.densepose_rcnn import DensePoseRCNN, load_detector

from bench_common import best_pass, machine, write_results  # benchmarks/, beside this script

ROOT = Path(__file__).resolve().parents[1]


def random_zoo_file(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from densepose_golden import SEED, draw_weights

    shapes = {k: tuple(v.shape) for k, v in DensePoseRCNN().state_dict().items()}
    path = folder / "random.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": draw_weights(shapes, SEED), "__author__": "random"}, f)  # as the zoo writes it
    return path


def detectron2_runner(source: Path, weights: Path, detections: int):
    sys.path.insert(0, str(source))
    sys.path.insert(0, str(source / "projects" / "DensePose"))
    from densepose import add_densepose_config
    from densepose.vis.extractor import DensePoseResultExtractor
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultPredictor

    cfg = get_cfg()
    add_densepose_config(cfg)
    cfg.merge_from_file(str(source / "projects/DensePose/configs/densepose_rcnn_R_50_FPN_s1x.yaml"))
    cfg.MODEL.DEVICE, cfg.MODEL.WEIGHTS, cfg.TEST.DETECTIONS_PER_IMAGE = "cpu", str(weights), detections
    predictor = DefaultPredictor(cfg)

    def run(photos):
        for image in photos:
            with torch.no_grad():
                outputs = predictor(image.permute(1, 2, 0).numpy()[:, :, ::-1])["instances"]
            DensePoseResultExtractor()(outputs)  # apply_net dump's conversion, as spd's charts
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=None, help="a DensePose model-zoo .pkl (default: random)")
    parser.add_argument("--photos", type=Path, default=ROOT / "tests" / "fixtures" / "densepose_rcnn")
    parser.add_argument("--detectron2", type=Path, default=None, help="detectron2's sources: time it too")
    parser.add_argument("--detections", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_densepose_cpu")
    args = parser.parse_args()
    paths = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    photos = [read_image(p) for p in paths]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or random_zoo_file(Path(tmp))
        model = load_detector(weights, detections_per_image=args.detections)
        rows["spd, DensePose for every detection"] = best_pass(
            lambda ims: [model.detect(im) for im in ims], photos, args.repeat)
        rows["spd, DensePose for the top detection (spd data densepose)"] = best_pass(
            lambda ims: [model.detect(im, charts=1) for im in ims], photos, args.repeat)
        if args.detectron2:
            rows["detectron2 DefaultPredictor + apply_net's conversion"] = best_pass(
                detectron2_runner(args.detectron2, weights, args.detections), photos, args.repeat)
    record = {**machine(), "cores": len(os.sched_getaffinity(0)), "torch": torch.__version__,
              "detections_per_image": args.detections, "photos": [f"{p.name} {tuple(im.shape[1:])}" for p, im in zip(paths, photos)],
              "images_per_second": {k: round(v, 3) for k, v in rows.items()}}
    reference = rows.get("detectron2 DefaultPredictor + apply_net's conversion")
    lines = [f"DensePose R-CNN R50-FPN on {record['cpu']} ({record['cores']} cores), {len(photos)} photos resized to "
             f"short side 800, at most {args.detections} detections, float32, best of {args.repeat}", "",
             "| path | images/s | vs detectron2 |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:.3f} | {f'{v / reference:.2f}x' if reference else '-'} |" for k, v in rows.items()]
    write_results(args.out, record, lines)


if __name__ == "__main__":
    main()
