"""The main job on the embedded default (``spd demo``): generate the synthetic dataset, train the
CPU family's SPD model (``cpu_spd``) on it from scratch, evaluate it with the official protocol in
its domain and, through the LIP-ATR shared classes, on domain B, and write a report with the
metrics and a grid of predictions beside the ground truth. Every step is a call of the public API."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from .config import load_config
from .data.detect import open_dataset
from .data.synthetic import generate
from .evaluation import EvalResult, evaluate_model, load_model, write_result
from .evaluation.report import comparison_table
from .inference import Prediction
from .labels import load_mapping
from .ops.atomic import write_text
from .ops.devices import torch_device
from .training import train
from .vis.prediction_grid import COLUMNS, prediction_grid, prediction_row

# A progress hook: (description, total) -> a callable that advances by n, or None (no progress).
Progress = Callable[[str, int], Callable[[int], None]]


def demo_config_path() -> Path:
    return Path(str(resources.files("spd.config").joinpath("demo.yaml")))


@dataclass
class DemoResult:
    report_dir: Path
    checkpoint: Path
    steps: int
    results: list[EvalResult]
    seconds: float


def _quiet(description: str, total: int) -> Callable[[int], None]:
    return lambda n=1: None


def run_demo(out: Path | str = "runs/demo", overrides: list[str] = (), device: str = "auto", cross_domain: int = 100,
             progress: Progress | None = None, train_progress: bool = True) -> DemoResult:
    """Runs the demo into ``out`` (its own folder: run again, it trains afresh). ``overrides``:
    ``--set`` values over ``demo.yaml``. Training uses one device (a multi-GPU machine too)."""
    start = time.perf_counter()
    out, bar = Path(out), progress or _quiet
    config, _ = load_config(demo_config_path(), [f"data.root={out / 'data' / 'synthetic_A'}", f"train.out_dir={out}",
                                                 "train.devices=1", *overrides])
    synth, root = config.data.synthetic, Path(config.data.root)
    generate(root, synth, progress=bar("1/4 generate synthetic domain A", synth.num))
    bar("2/4 train", 0)
    result = train(config, name="train", device=device, overwrite=True, progress=train_progress)

    model, _ = load_model(result.last_checkpoint, torch_device(device))
    reader = open_dataset(root, config.data.val_split)
    source = {"checkpoint": str(result.last_checkpoint), "step": result.global_step}
    rows = []  # the report's grid: the first 8 val images, drawn from the evaluation's own predictions

    def keep_row(item: dict, prediction: Prediction) -> None:
        if len(rows) < 8:
            rows.append(prediction_row(item["image"], item["parsing"], prediction.to("cpu"), reader.label_space))

    evaluation = evaluate_model(model, reader, config.eval, name=f"demo ({config.model.name}, domain A)", source=source,
                                tick=bar("3/4 evaluate (official protocol)", len(reader)), on_prediction=keep_row)
    report_dir = out / "report"
    write_result(evaluation, report_dir / "domain_A", reader.label_space)
    results = [evaluation]
    if cross_domain > 0:
        b_root = out / "data" / "synthetic_B"
        generate(b_root, replace(synth, num=cross_domain, domain="B", format=None, val_fraction=1.0),
                 progress=bar("   generate domain B (ATR layout)", cross_domain))
        b_reader = open_dataset(b_root, "val")
        cross = evaluate_model(model, b_reader, config.eval, load_mapping("shared"), name="demo on domain B (shared classes)",
                               source=source, tick=bar("   evaluate on domain B (shared classes)", len(b_reader)))
        write_result(cross, report_dir / "domain_B_shared")
        results.append(cross)

    bar("4/4 report", 0)
    grid = prediction_grid(rows, report_dir / "predictions.png", reader.label_space)
    seconds = time.perf_counter() - start
    write_text(report_dir / "README.md",
               "# SPD demo\n\n"
               f"`{config.model.name}` model trained from scratch for {result.global_step} steps on {synth.num} synthetic "
               f"images (domain A), evaluated on its val split and across domains; total time {seconds / 60:.1f} min.\n\n"
               + comparison_table([r.to_json() for r in results])
               + f"\nPredictions ({' | '.join(COLUMNS)}): `{grid.name}`\n")
    return DemoResult(report_dir, result.last_checkpoint, result.global_step, results, seconds)
