"""detectron2's DensePose R-CNN, run once on random weights, to check that ``spd.densepose_rcnn``
computes what detectron2 computes.

It draws random weights in detectron2's names (tests/densepose_golden.py), writes them as a
model-zoo ``.pkl`` (``{"model": {name: array}}``), loads that file with detectron2's own
checkpointer into ``densepose_rcnn_R_50_FPN_s1x.yaml``'s model, runs ``DefaultPredictor`` on the
test photos and converts each detection as ``apply_net.py dump`` does (``DensePoseResultExtractor``).
It writes OUT/golden.npz (per photo: boxes, scores, each detection's part labels and its U, V at
every UV_STEP-th pixel) and the photos.

    python -m venv /tmp/d2venv && /tmp/d2venv/bin/pip install torch==2.14.1 torchvision==0.29.1 \\
        numpy pillow opencv-python-headless scipy av fvcore iopath pycocotools omegaconf hydra-core yacs
    PYTHONPATH=detectron2 /tmp/d2venv/bin/python tools/densepose_reference.py \\
        --detectron2 detectron2 --demo SCHP/demo/demo.jpg --out tests/fixtures/densepose_rcnn

detectron2 runs from its source tree (a snapshot of its main branch, December 2026): this model
uses none of its compiled C++ / CUDA ops (its ROIAlign and NMS are torchvision's), so the fixtures
were made without building them (`pip install -e .` of that snapshot failed in its build isolation).
Needs detectron2's sources; SPD does not.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from densepose_golden import DETECTIONS, PHOTOS, SEED, UV_STEP, draw_weights, make_photos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectron2", type=Path, required=True, help="the detectron2 sources (built)")
    parser.add_argument("--demo", type=Path, required=True, help="SCHP's demo/demo.jpg (the photos are made from it)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pkl", type=Path, default=Path("/tmp/densepose_random.pkl"),
                        help="where the random weights are written in the zoo's format (not committed: 255 MB)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.detectron2 / "projects" / "DensePose"))
    from densepose import add_densepose_config
    from densepose.vis.extractor import DensePoseResultExtractor
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.data.detection_utils import read_image
    from detectron2.engine import DefaultPredictor

    cfg = get_cfg()
    add_densepose_config(cfg)
    cfg.merge_from_file(str(args.detectron2 / "projects/DensePose/configs/densepose_rcnn_R_50_FPN_s1x.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.TEST.DETECTIONS_PER_IMAGE = DETECTIONS
    cfg.freeze()
    predictor = DefaultPredictor(cfg)
    shapes = {k: tuple(v.shape) for k, v in predictor.model.state_dict().items()
              if k not in ("pixel_mean", "pixel_std")}
    arrays = draw_weights(shapes, SEED)
    with open(args.pkl, "wb") as f:
        pickle.dump({"model": arrays, "__author__": "spd tools/densepose_reference.py"}, f)
    DetectionCheckpointer(predictor.model).load(str(args.pkl))
    loaded = predictor.model.state_dict()
    assert all(np.array_equal(loaded[k].numpy(), v) for k, v in arrays.items()), "the zoo file did not load as written"

    make_photos(args.demo, args.out)
    golden = {}
    for name in PHOTOS:
        image = read_image(str(args.out / name), format="BGR")
        with torch.no_grad():
            outputs = predictor(image)["instances"]
        charts, _ = DensePoseResultExtractor()(outputs)
        golden[f"{name}/boxes"] = outputs.pred_boxes.tensor.numpy()
        golden[f"{name}/scores"] = outputs.scores.numpy()
        for i, chart in enumerate(charts):
            golden[f"{name}/{i}/labels"] = chart.labels.numpy().astype(np.uint8)
            golden[f"{name}/{i}/uv"] = chart.uv[:, ::UV_STEP, ::UV_STEP].numpy()
        print(name, image.shape, "scores", np.round(outputs.scores.numpy(), 4),
              "parts", [np.bincount(c.labels.numpy().ravel(), minlength=25).nonzero()[0].tolist() for c in charts])
    np.savez_compressed(args.out / "golden.npz", **golden)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
