"""``spd demo``: the main job on the embedded default. Generates the synthetic dataset, trains the
CPU family's SPD model (``cpu_spd``) on it (CPU, minutes), evaluates it with the official protocol, also across
domains through the LIP-ATR shared-class mapping, and writes a report with the metrics and a grid
of predictions next to the ground truth."""

from __future__ import annotations

import argparse
import time
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from ..atomic import write_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="generate data, train, evaluate and report on the synthetic dataset (CPU, minutes)")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override the demo config (src/spd/config/demo.yaml), e.g. --set train.max_epochs=1")
    p.add_argument("--device", default="auto")
    p.add_argument("--cross-domain", type=int, default=100, metavar="N",
                   help="also evaluate on N images of domain B through the shared-class mapping (0: skip)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..data.dataset import ParsingDataset
    from ..data.detect import open_dataset
    from ..data.synthetic import SynthSpec, generate
    from ..engine.devices import torch_device
    from ..engine.evaluate import evaluate_model, load_model
    from ..engine.evaluator import write_result
    from ..engine.inference import predict_image
    from ..engine.report import comparison_table
    from ..engine.train import train
    from ..labels import load_mapping
    from ..vis.prediction_grid import COLUMNS, prediction_grid, prediction_row

    start = time.perf_counter()
    config_path = Path(str(resources.files("spd.config").joinpath("demo.yaml")))
    out = args.out
    overrides = [f"data.root={out / 'data' / 'synthetic_A'}", f"train.out_dir={out}"] + list(args.overrides)
    config, _ = load_config(config_path, overrides)
    synth = config.data.synthetic
    root = Path(config.data.root)
    with tqdm(total=synth.num, desc="1/4 generate synthetic domain A", unit="img", disable=None) as bar:
        generate(root, SynthSpec(num=synth.num, domain=synth.domain, seed=synth.seed, size=synth.size,
                                 val_fraction=synth.val_fraction), progress=bar.update)
    print("2/4 train", flush=True)
    # The demo owns its folder: running it again trains afresh.
    result = train(config, name="train", device=args.device, overwrite=True)

    model, _ = load_model(result.last_checkpoint, torch_device(args.device))
    reader = open_dataset(root, config.data.val_split)
    with tqdm(total=len(reader), desc="3/4 evaluate (official protocol)", unit="img", disable=None) as bar:
        evaluation = evaluate_model(model, reader, config.eval, name=f"demo ({config.model.preset}, domain A)",
                                    source={"checkpoint": str(result.last_checkpoint)}, tick=lambda: bar.update(1))
    report_dir = out / "report"
    write_result(evaluation, report_dir / "domain_A", reader.label_space)
    results = [evaluation.to_json()]

    if args.cross_domain > 0:
        b_root = out / "data" / "synthetic_B"
        with tqdm(total=args.cross_domain, desc="   generate domain B (ATR layout)", unit="img", disable=None) as bar:
            generate(b_root, SynthSpec(num=args.cross_domain, domain="B", seed=synth.seed, size=synth.size,
                                       val_fraction=1.0), progress=bar.update)
        b_reader = open_dataset(b_root, "val")
        with tqdm(total=len(b_reader), desc="   evaluate on domain B (shared classes)", unit="img", disable=None) as bar:
            cross = evaluate_model(model, b_reader, config.eval, load_mapping("shared"),
                                   name="demo on domain B (shared classes)",
                                   source={"checkpoint": str(result.last_checkpoint)}, tick=lambda: bar.update(1))
        write_result(cross, report_dir / "domain_B_shared")
        results.append(cross.to_json())

    print("4/4 report", flush=True)
    dataset = ParsingDataset(reader)
    device = next(model.parameters()).device
    rows = []
    for i in range(min(8, len(dataset))):
        item = dataset[i]
        prediction = predict_image(model, item["image"].to(device), config.eval)
        rows.append(prediction_row(item["image"], item["parsing"], prediction, reader.label_space))
    grid = prediction_grid(rows, report_dir / "predictions.png", reader.label_space)
    elapsed = time.perf_counter() - start
    text = ("# SPD demo\n\n"
            f"`{config.model.preset}` model trained from scratch for {result.global_step} steps on {synth.num} synthetic images "
            f"(domain A), evaluated on its val split and across domains; total time {elapsed / 60:.1f} min.\n\n"
            + comparison_table(results)
            + f"\nPredictions ({' | '.join(COLUMNS)}): `{grid.name}`\n")
    write_text(report_dir / "README.md", text)
    print(text)
    print(f"report: {report_dir}  (demo finished in {elapsed:.0f} s)")
    return 0
