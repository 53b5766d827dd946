"""What evaluation writes: results that say where they come from, the confusion matrix, folders
that never replace other results, and reports that keep every result."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from spd.evaluation.evaluate import default_eval_dir
from spd.evaluation.evaluator import Evaluator, write_result
from spd.inference import Prediction
from spd.evaluation.report import write_report


class _Reader:
    def __init__(self, root: str, split: str):
        self.root, self.split = Path(root), split


def test_eval_folders_are_named_by_checkpoint_data_split_and_mapping(tmp_path):
    ckpt = tmp_path / "runs" / "lip_spd" / "checkpoints" / "last.ckpt"
    names = {default_eval_dir(ckpt, _Reader("data/LIP", "val"), None),
             default_eval_dir(ckpt, _Reader("data/LIP", "train"), None),
             default_eval_dir(ckpt, _Reader("data/ATR", "val"), "shared"),
             default_eval_dir(ckpt.with_name("epoch003-step000100.ckpt"), _Reader("data/LIP", "val"), None)}
    assert len(names) == 4
    assert default_eval_dir(ckpt, _Reader("data/ATR", "val"), "shared") == tmp_path / "runs/lip_spd/eval/last_ATR_val_map-shared"
    weights = tmp_path / "models" / "jppnet.safetensors"
    assert default_eval_dir(weights, _Reader("data/LIP", "val"), None) == tmp_path / "models/eval/jppnet_LIP_val"
    preds = tmp_path / "out" / "pngs"
    assert default_eval_dir(preds, _Reader("data/LIP", "val"), None, predictions=True) == tmp_path / "out/eval_pngs_LIP_val"


def _result(name: str, space: str, classes_right: int):
    evaluator = Evaluator(space, space, tasks=("parsing",))
    gt = torch.arange(4).repeat(4, 1)
    pred = gt.clone()
    pred[:, classes_right:] = 0
    evaluator.update(Prediction(parsing=pred), {"parsing": gt, "has_parsing": torch.tensor(True)})
    meta = {"name": name, "protocol": {}, "data": {"root": f"data/{space.upper()}", "split": "val", "label_space": space},
            "source": {"checkpoint": "runs/x/checkpoints/last.ckpt", "step": 1200, "epoch": 3},
            "spd_version": "0.1.0", "date": "2026-11-24T19:00:00+00:00"}
    return evaluator.result(meta)


def test_results_carry_the_confusion_matrix_and_their_source(tmp_path):
    result = _result("spd", "lip", 3)
    paths = write_result(result, tmp_path / "eval", "lip")
    doc = json.loads(paths["json"].read_text())
    conf = doc["parsing"]["confusion_matrix"]
    assert len(conf) == 20 and len(conf[0]) == 21 and conf[3][0] == 4 and conf[1][1] == 4  # class 3 predicted as 0
    rows = paths["confusion"].read_text().splitlines()
    assert rows[0].startswith("ground truth \\ prediction,Background,Hat") and rows[0].endswith(",(no class)")
    assert rows[4].split(",")[:2] == ["Glove", "4"]  # class 3, all predicted as background
    text = paths["markdown"].read_text()
    assert "(step 1200, epoch 3); spd 0.1.0, 2026-11-24T19:00:00+00:00" in text


def test_report_keeps_results_of_every_label_space(tmp_path):
    a = write_result(_result("lip model", "lip", 3), tmp_path / "a")["json"]
    b = write_result(_result("atr model", "atr", 2), tmp_path / "b")["json"]
    paths = write_report([a, b], tmp_path / "report")
    table = paths["markdown"].read_text()
    assert "Classes: lip" in table and "Classes: atr" in table
    assert "| lip model | LIP/val |" in table and "| atr model | ATR/val |" in table
    assert "DP part mIoU" in table
    import matplotlib.image

    image = matplotlib.image.imread(paths["figure"])
    assert image.shape[0] > 700  # two panels, one per label space


def test_a_resumed_runs_csv_log_keeps_the_earlier_rows(tmp_path):
    import csv

    from spd.training.loggers import RunCSVLogger, latest_version

    folder = tmp_path / "logs" / "version_2"
    folder.mkdir(parents=True)
    (tmp_path / "logs" / "version_0").mkdir()
    (folder / "metrics.csv").write_text("loss,step\n0.9,3\n0.8,7\n")
    assert latest_version(tmp_path / "logs") == 2 and latest_version(tmp_path / "nothing") is None
    logger = RunCSVLogger(tmp_path, name="logs", version=2)
    logger.log_metrics({"loss": 0.5}, step=11)
    logger.log_metrics({"loss": 0.4, "val/miou": 30.0}, step=15)  # a new column: the file is rewritten
    logger.save()
    with open(folder / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["loss"]) for r in rows] == [("3", "0.9"), ("7", "0.8"), ("11", "0.5"), ("15", "0.4")]
    assert rows[-1]["val/miou"] == "30.0"


def test_report_gives_mean_and_spread_over_seeds(tmp_path):
    runs = [write_result(_result("cpu_spd", "lip", k), tmp_path / f"seed{k}")["json"] for k in (2, 3, 4)]
    table = write_report(runs + [write_result(_result("cpu_s", "lip", 4), tmp_path / "s")["json"]],
                         tmp_path / "report")["markdown"].read_text()
    row = next(line for line in table.splitlines() if line.startswith("| cpu_spd "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["cpu_spd", "LIP/val", "3"]
    # mIoU over the 4 classes: 2, 3 and 4 columns right -> 33.33, 62.5, 100 (mean 65.28, sample sd 33.42)
    mean, sd = (float(x) for x in cells[5].split(" ± "))
    assert abs(mean - 65.28) < 0.01 and abs(sd - 33.42) < 0.01
    assert "| cpu_s | LIP/val | 1 |" in table
