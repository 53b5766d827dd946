"""SCHP on a CPU: images per second of ``spd.Predictor`` with a converted SCHP model (float32,
and bfloat16 autocast where the CPU computes bf16 natively), of SCHP's own ``simple_extractor.py``
loop on the same photos in the same run (with ``--schp``: its sources; its InPlaceABN op written
out in PyTorch, as tools/schp_reference.py does, since the op is a CUDA extension), and of the ONNX
export's network in ONNX Runtime (with ``--onnx``).

    python benchmarks/bench_schp.py [--dataset lip] [--weights exp-schp-201908261155-lip.pth]
        [--photos FOLDER] [--schp PATH/TO/Self-Correction-Human-Parsing] [--onnx] [--repeat 3]
        [--out benchmarks/results_schp_cpu]

Without ``--weights`` the weights are random (speed does not depend on them). Each figure is the
best of ``--repeat`` passes over the photos (batch 1, after a warm-up pass), wall seconds; the
network runs at SCHP's crop (473 x 473 for LIP, 512 x 512 for ATR and Pascal). Writes OUT.json
and OUT.md, naming the CPU and whether it has native bf16 (AMX or AVX-512 BF16).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see spd/cli/__init__.py

import numpy as np
import torch

from spd import Predictor
from spd.convert.schp import INPUT_SIZES, convert_checkpoint, schp_protocol
from spd.data.image_io import read_image
from spd.model import SPDNet, preset

from bench_common import best_pass, machine, write_results  # benchmarks/, beside this script

ROOT = Path(__file__).resolve().parents[1]


def spd_model(args) -> SPDNet:
    if args.weights:
        return convert_checkpoint(args.weights, args.dataset)
    from spd.convert.schp import SCHP_NORMALISATION
    return SPDNet(preset(f"schp_{args.dataset}"), SCHP_NORMALISATION).eval()


def reference_runner(schp: Path, model: SPDNet, dataset: str, folder: Path):
    """SCHP's simple_extractor.py loop (its dataset class, transform, upsampling, transform_logits,
    argmax) with the same weights, on the CPU."""
    sys.path.insert(0, str(ROOT / "tools"))
    from schp_reference import schp_model  # noqa: E402

    from spd.convert.schp import _theirs

    reference = schp_model(schp, model.config.num_parsing_classes)
    reference.load_state_dict({_theirs(k): v for k, v in model.state_dict().items()})
    reference.eval()
    import torchvision.transforms as transforms
    from datasets.simple_extractor_dataset import SimpleFolderDataset
    from utils.transforms import transform_logits

    input_size = list(INPUT_SIZES[dataset])
    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize(mean=[0.406, 0.456, 0.485], std=[0.225, 0.224, 0.229])])

    def run(_photos):
        data = SimpleFolderDataset(root=str(folder), input_size=input_size, transform=transform)
        with torch.no_grad():
            for index in range(len(data)):
                image, meta = data[index]
                output = reference(image[None])
                up = torch.nn.Upsample(size=input_size, mode="bilinear", align_corners=True)(output[0][-1][0][None])
                logits = transform_logits(up.squeeze().permute(1, 2, 0).numpy(), meta["center"], meta["scale"],
                                          meta["width"], meta["height"], input_size=input_size)
                np.argmax(logits, axis=2)
    return run


def onnx_runner(model: SPDNet, dataset: str, tmp: Path):
    import onnxruntime as ort

    from spd.export.formats import export_model

    path = tmp / "schp.onnx"
    export_model(model, schp_protocol(dataset), "onnx", path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.zeros((1, 3, *INPUT_SIZES[dataset]), dtype=np.uint8)

    def run(photos):
        for _ in photos:
            session.run(None, {name: x})
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=tuple(INPUT_SIZES), default="lip")
    parser.add_argument("--weights", type=Path, default=None, help="an SCHP checkpoint (default: random weights)")
    parser.add_argument("--photos", type=Path, default=ROOT / "tests" / "fixtures" / "schp",
                        help="a folder of photos (default: the test photos)")
    parser.add_argument("--schp", type=Path, default=None, help="SCHP's sources: time its own loop too")
    parser.add_argument("--onnx", action="store_true", help="time the ONNX export in ONNX Runtime too")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_schp_cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    paths = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")
                   and "_" not in p.stem)
    photos = [read_image(p) for p in paths]
    model = spd_model(args)
    native = machine()["native_bf16"]
    rows = {}
    for precision in ("32", "bf16") if native else ("32",):
        predictor = Predictor(model, schp_protocol(args.dataset), device="cpu", batch_size=1, precision=precision)
        rows[f"spd predict ({'float32' if precision == '32' else 'bf16 autocast'})"] = best_pass(
            lambda ims: list(predictor.predict_iter(ims)), photos, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        if args.schp:
            folder = Path(tmp) / "photos"
            folder.mkdir()
            for p in paths:
                (folder / p.name).write_bytes(p.read_bytes())
            rows["SCHP simple_extractor.py (float32)"] = best_pass(
                reference_runner(args.schp, model, args.dataset, folder), photos, args.repeat)
        if args.onnx:
            rows["ONNX Runtime, network only (float32)"] = best_pass(onnx_runner(model, args.dataset, Path(tmp)),
                                                                    photos, args.repeat)
    record = {**machine(), "cores": len(os.sched_getaffinity(0)),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "dataset": args.dataset,
              "input_size": list(INPUT_SIZES[args.dataset]), "photos": [f"{p.name} {tuple(im.shape[1:])}"
                                                                        for p, im in zip(paths, photos)],
              "images_per_second": {k: round(v, 3) for k, v in rows.items()}, "python": platform.python_version()}
    reference = rows.get("SCHP simple_extractor.py (float32)")
    lines = [f"SCHP {args.dataset} at {INPUT_SIZES[args.dataset][0]} px on {record['cpu']} ({record['cores']} cores; "
             f"native bf16: {', '.join(native) or 'no'}), {len(photos)} photos, batch 1, best of {args.repeat}", "",
             "| path | images/s | vs SCHP's script |", "|---|---:|---:|"]
    for k, v in rows.items():
        lines.append(f"| {k} | {v:.2f} | {f'{v / reference:.2f}x' if reference else '-'} |")
    write_results(args.out, record, lines)


if __name__ == "__main__":
    main()
