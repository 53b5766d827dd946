"""SCHP's own code, run once on random weights, to check that SPD's ``schp`` family, ``spd convert
schp`` and SCHP's test protocol compute what SCHP computes.

It draws random weights in SCHP's names (tests/schp_golden.py), loads them into SCHP's
``networks/AugmentCE2P.py`` (its InPlaceABN op written out below in PyTorch, as the op's
``forward_cpu`` computes it in eval mode: SCHP's ``modules`` package is a CUDA extension), and writes:

  OUT/golden.npz            per dataset (lip, atr, pascal) and network input: the parsing, fusion
                            and edge outputs
  OUT/<photo>.png           the test photos (crops of SCHP's demo photo)
  OUT/<dataset>_<photo>.png the label maps of simple_extractor.py's pipeline (its dataset class,
                            transform, upsampling and transform_logits, verbatim) for each photo

The committed tests/fixtures/schp/ were made with this script:

    pip install --target /tmp/refpkgs opencv-python-headless   # beside SPD's own environment
    PYTHONPATH=/tmp/refpkgs .venv/bin/python tools/schp_reference.py --schp PATH/TO/Self-Correction-Human-Parsing \\
        --out tests/fixtures/schp

Needs SCHP's sources and OpenCV; SPD itself needs neither.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from schp_golden import INPUT_HW, SEED, draw_weights, golden_input, make_photos  # noqa: E402

DATASETS = {"lip": (20, [473, 473]), "atr": (18, [512, 512]), "pascal": (7, [512, 512])}


class InPlaceABNSync(nn.Module):
    """modules/bn.py's constructor; the forward of modules/functions.py + src/inplace_abn_cpu.cpp in
    eval mode: x - mean, times rsqrt(var + eps) * (|weight| + eps), plus bias, then the activation."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, activation="leaky_relu", slope=0.01):
        super().__init__()
        self.eps, self.activation, self.slope = eps, activation, slope
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        assert not self.training, "the reference runs in eval mode only"
        shape = (1, -1, 1, 1)
        gamma = self.weight.abs() + self.eps
        mul = torch.rsqrt(self.running_var + self.eps) * gamma
        x = (x - self.running_mean.view(shape)) * mul.view(shape) + self.bias.view(shape)
        if self.activation == "leaky_relu":
            x = F.leaky_relu(x, self.slope)
        elif self.activation != "none":
            raise ValueError(self.activation)
        return x


def schp_model(schp: Path, num_classes: int) -> nn.Module:
    modules = types.ModuleType("modules")
    modules.InPlaceABNSync = modules.InPlaceABN = InPlaceABNSync
    sys.modules["modules"] = modules
    if str(schp) not in sys.path:
        sys.path.insert(0, str(schp))
    import networks

    return networks.init_model("resnet101", num_classes=num_classes, pretrained=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schp", type=Path, required=True, help="a checkout of Self-Correction-Human-Parsing")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    sys.path.insert(0, str(args.schp))
    make_photos(args.schp / "demo" / "demo.jpg", args.out)
    photos = args.out / "photos"
    photos.mkdir(exist_ok=True)
    for p in sorted(args.out.glob("*.png")):
        if "_" not in p.stem:
            (photos / p.name).write_bytes(p.read_bytes())

    from datasets.simple_extractor_dataset import SimpleFolderDataset  # noqa: E402 (SCHP's, on the path now)
    import torchvision.transforms as transforms
    from PIL import Image
    from utils.transforms import transform_logits

    golden = {}
    for dataset, (num_classes, input_size) in DATASETS.items():
        model = schp_model(args.schp, num_classes)
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        weights = draw_weights(shapes, SEED + num_classes)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
        model.eval()
        for i in range(len(INPUT_HW)):
            (parsing, fusion), (edge,) = model(torch.from_numpy(golden_input(i)))
            golden[f"{dataset}/{i}/parsing"], golden[f"{dataset}/{i}/fusion"] = parsing.numpy(), fusion.numpy()
            golden[f"{dataset}/{i}/edge"] = edge.numpy()
        # simple_extractor.py's main loop, on the CPU.
        transform = transforms.Compose([transforms.ToTensor(),
                                        transforms.Normalize(mean=[0.406, 0.456, 0.485], std=[0.225, 0.224, 0.229])])
        data = SimpleFolderDataset(root=str(photos), input_size=input_size, transform=transform)
        for index in range(len(data)):
            image, meta = data[index]
            c, s, w, h = meta["center"], meta["scale"], meta["width"], meta["height"]
            output = model(image[None])
            upsample = torch.nn.Upsample(size=input_size, mode="bilinear", align_corners=True)
            upsample_output = upsample(output[0][-1][0].unsqueeze(0))
            upsample_output = upsample_output.squeeze()
            upsample_output = upsample_output.permute(1, 2, 0)  # CHW -> HWC
            logits_result = transform_logits(upsample_output.data.cpu().numpy(), c, s, w, h, input_size=input_size)
            parsing_result = np.argmax(logits_result, axis=2)
            name = Path(meta["name"]).stem
            Image.fromarray(np.asarray(parsing_result, dtype=np.uint8)).save(args.out / f"{dataset}_{name}.png")
            print(dataset, name, parsing_result.shape, np.bincount(parsing_result.ravel(), minlength=num_classes))
    for p in photos.iterdir():
        p.unlink()
    photos.rmdir()
    np.savez_compressed(args.out / "golden.npz", **golden)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
