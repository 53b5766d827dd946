"""Learning per CPU second: every model gets the same data, the same CPU-second budget and the same
metric, so that the CPU family can be compared with what a user would otherwise pick.

    python benchmarks/bench_learning.py [--budget 300] [--models cpu_spd cpu_s lraspp r18_fpn ...]
        [--set cpu_spd:loss.pose=0.1 ...] [--out benchmarks/results_learning_cpu]

Models: any preset of the CPU family (``cpu_s``, ``cpu_sp``, ``cpu_sd``, ``cpu_spd``), trained with
the multi-task loss of the demo config, and two parsing-only references built from torchvision
alone: ``lraspp`` (LR-ASPP MobileNetV3-Large) and ``r18_fpn`` (ResNet-18 with torchvision's
FeaturePyramidNetwork, classifier on the stride-4 level), trained with the demo config's parsing
loss (at input resolution, with its class weights). All train from scratch on synthetic
domain A with the demo's augmentation, AdamW and a poly schedule over the CPU budget, in one
process (data loading included in the CPU seconds), then are evaluated with the official protocol
on domain A's val split and on domain B through the LIP-ATR shared classes.

CPU seconds are the process's own (user + system, every thread), not wall time, so that a busy
machine does not change the budget. Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see spd/cli/__init__.py

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.models.segmentation import lraspp_mobilenet_v3_large
from torchvision.ops import FeaturePyramidNetwork

from spd.config import from_dict, load_config
from spd.config.load import apply_overrides
from spd.data.dataset import ParsingDataset
from spd.data.detect import open_dataset
from spd.data.heatmaps import HeatmapCodec
from spd.data.sampling import EpochSampler
from spd.data.synthetic import SynthSpec, generate
from spd.data.transforms import train_transform
from spd.engine.evaluate import evaluate_model
from spd.engine.train import loss_class_weights
from spd.labels import load_mapping
from spd.losses import MultiTaskLoss
from spd.losses.parsing import parsing_loss
from spd.model import SPDNet, StageOutput, preset
from spd.model.config import ModelConfig
from spd.model.decoder import conv_bn_relu
from spd.model.spd_net import IMAGENET_MEAN, IMAGENET_STD

REFERENCES = ("lraspp", "r18_fpn")


class ParsingReference(nn.Module):
    """A parsing-only torchvision network behind the interface the evaluation uses
    (``config``, ``normalise``, ``predict_stages``); logits at the input's resolution."""

    def __init__(self, name: str, num_classes: int):
        super().__init__()
        self.config = ModelConfig(name=name, tasks=("parsing",), feeds={}, scales=(1.0,))
        if name == "lraspp":
            self.net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)
        else:
            self.body = create_feature_extractor(resnet18(weights=None), {f"layer{i}": str(i) for i in range(1, 5)})
            self.fpn = FeaturePyramidNetwork([64, 128, 256, 512], 64)
            self.head = nn.Sequential(conv_bn_relu(64, 64), nn.Conv2d(64, num_classes, 1))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() / 255.0 - self.mean) / self.std

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "net"):
            return self.net(x)["out"]
        finest = self.fpn(self.body(x))["1"]
        return F.interpolate(self.head(finest), size=x.shape[-2:], mode="bilinear", align_corners=False)

    def predict_stages(self, x: torch.Tensor) -> list[StageOutput]:
        return [StageOutput(parsing=self.logits(x))]


def build(name: str, overrides: list[str], base_doc: dict, reader):
    """(model, loss function, experiment config) for one entry of --models."""
    preset_key = [] if name in REFERENCES else [f"model.preset={name}"]
    config = from_dict(apply_overrides(base_doc, preset_key + overrides))
    if name in REFERENCES:
        model = ParsingReference(name, preset("cpu_s", parsing_space=reader.label_space).num_parsing_classes)
        weights = loss_class_weights(config, reader).get("class_weights")

        def loss(model, batch):
            logits = model.logits(model.normalise(batch["image"]))
            return parsing_loss(logits, batch["parsing"], batch["has_parsing"], "input", class_weights=weights)
        return model, loss, config
    mc = preset(config.model.preset, **config.model.overrides(), parsing_space=reader.label_space)
    model = SPDNet(mc)
    criterion = MultiTaskLoss(config.loss, **loss_class_weights(config, reader))

    def loss(model, batch):
        return criterion(model(model.normalise(batch["image"])), batch).total
    return model, loss, config


def train_for(model, loss_fn, config, reader, budget: float, seed: int) -> dict:
    """Trains until the process has spent ``budget`` CPU seconds; the LR follows a poly decay over
    the budget's fraction spent (so that every model ends its schedule at the budget)."""
    torch.manual_seed(seed)
    dataset = ParsingDataset(reader, train_transform(config.augment, reader.label_space),
                             HeatmapCodec(stride=model.config.output_stride), seed=seed)
    sampler = EpochSampler(len(dataset), seed)
    o = config.optim
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=o.lr, weight_decay=o.weight_decay)
    b = config.data.batch_size
    model.train()
    start_cpu, start_wall, steps, epoch = time.process_time(), time.perf_counter(), 0, 0
    while True:
        sampler.set_epoch(epoch)
        order = [i for _, i in sampler]
        for i in range(0, len(order) - b + 1, b):
            spent = (time.process_time() - start_cpu) / budget
            if spent >= 1.0:
                return {"steps": steps, "samples": steps * b, "epochs": round(steps * b / len(dataset), 2),
                        "cpu_s": round(time.process_time() - start_cpu, 1),
                        "wall_s": round(time.perf_counter() - start_wall, 1)}
            warm = min(1.0, (steps + 1) / max(1, o.warmup_steps))
            for group in optimiser.param_groups:
                group["lr"] = o.lr * warm * (1.0 - spent) ** o.poly_power
            batch = torch.utils.data.default_collate([dataset[(epoch, j)] for j in order[i:i + b]])
            loss = loss_fn(model, batch)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            steps += 1
        epoch += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=300.0, help="CPU seconds of training per model")
    parser.add_argument("--models", nargs="+", default=["cpu_s", "cpu_sp", "cpu_sd", "cpu_spd", "r18_fpn", "lraspp"],
                        help="presets or references; NAME@TAG runs NAME again under its own --set overrides")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="MODEL:KEY=VALUE",
                        help="config override for one model, e.g. cpu_spd:loss.pose=0.1")
    parser.add_argument("--num", type=int, default=700, help="synthetic domain A images (train + val)")
    parser.add_argument("--cross", type=int, default=100, help="domain B images for the cross-domain score")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=Path("runs/bench_learning/data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results_learning_cpu"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from importlib import resources
    base, base_doc = load_config(Path(str(resources.files("spd.config").joinpath("demo.yaml"))))
    synth = base.data.synthetic
    a_root, b_root = args.data / f"synthetic_A_{args.num}", args.data / f"synthetic_B_{args.cross}"
    generate(a_root, SynthSpec(num=args.num, domain="A", seed=synth.seed, size=synth.size,
                               val_fraction=synth.val_fraction))
    generate(b_root, SynthSpec(num=args.cross, domain="B", seed=synth.seed, size=synth.size, val_fraction=1.0))
    train_reader, val_reader, b_reader = (open_dataset(a_root, "train"), open_dataset(a_root, "val"),
                                          open_dataset(b_root, "val"))
    shared = load_mapping("shared")

    rows = []
    for label in args.models:
        name = label.split("@", 1)[0]  # "cpu_s@narrow": preset cpu_s with the overrides given to "cpu_s@narrow"
        overrides = [o.split(":", 1)[1] for o in args.overrides if o.split(":", 1)[0] == label]
        model, loss_fn, config = build(name, overrides, base_doc, train_reader)
        params = sum(p.numel() for p in model.parameters())
        run = train_for(model, loss_fn, config, train_reader, args.budget, args.seed)
        model.eval()
        protocol = replace(config.eval, flip=False)
        a = evaluate_model(model, val_reader, protocol, name=label, num_workers=0)
        b = evaluate_model(model, b_reader, protocol, shared, name=label, num_workers=0)
        row = {"model": label, "overrides": overrides, "params_M": round(params / 1e6, 2), **run,
               "A_miou": a.parsing["miou"], "A_pixel_acc": a.parsing["pixel_accuracy"],
               "A_pckh": a.pose["pckh"]["Total"] if a.pose else None,
               "A_dp_part_miou": a.densepose["part_miou"] if a.densepose else None,
               "B_shared_miou": b.parsing["miou"],
               "A_iou": {k: a.parsing["iou"][k] for k in ("Left-arm", "Right-arm", "Left-leg", "Right-leg",
                                                            "Left-shoe", "Right-shoe") if k in a.parsing["iou"]}}
        rows.append(row)
        print(json.dumps(row), flush=True)

    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores visible, {args.threads} threads",
              "cpu": platform.processor() or "", "torch": torch.__version__, "budget_cpu_s": args.budget,
              "data": f"synthetic A: {len(train_reader)} train / {len(val_reader)} val images, "
                      f"{synth.size} px; B: {len(b_reader)} images",
              "input": list(base.augment.size), "batch": base.data.batch_size, "seed": args.seed,
              "date": time.strftime("%Y-%m-%d"), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"Learning per CPU second: {args.budget:.0f} CPU s of training each, {result['machine']}, torch "
             f"{result['torch']}, {result['data']}, crops {result['input'][0]}x{result['input'][1]}, batch "
             f"{result['batch']}, seed {args.seed}.", "",
             "| model | overrides | params (M) | steps | CPU s | A mIoU | A pixel acc | A PCKh | A part mIoU | B shared mIoU |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {' '.join(r['overrides']) or '-'} | {r['params_M']} | {r['steps']} | {r['cpu_s']} | "
              f"{r['A_miou']} | {r['A_pixel_acc']} | {r['A_pckh'] or '-'} | {r['A_dp_part_miou'] or '-'} | "
              f"{r['B_shared_miou']} |" for r in rows]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
