"""End to end: a tiny model trains on generated data, saves, resumes, and is evaluated with the
official protocol; it must beat a chance baseline measured on the same split by a wide margin."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from spd.cli.main import main
from spd.config import load_config
from spd.data.dataset import ParsingDataset
from spd.data.detect import open_dataset
from spd.evaluation.evaluate import evaluate_model, evaluate_predictions, load_model
from spd.evaluation.evaluator import Evaluator
from spd.inference import Prediction, predict_batch, predict_image
from spd.model import SPDNet, preset
from spd.weights import load_checkpoint
from spd.training.module import validation_protocol
from spd.training.train import train

pytestmark = pytest.mark.slow


def overrides(tmp_path, data_root, epochs, name="run"):
    return [f"data.root={data_root}", "data.synthetic={domain: B, num: 120, size: 96, seed: 1, val_fraction: 0.2}",
            "model.preset=cpu_spd", "model.fpn.decoder_width=32", "model.fpn.head_width=32", "augment.size=[96, 64]", "augment.fit=true",
            "augment.rotation=0.0", "data.batch_size=8", "data.num_workers=0", "optim.name=adamw", "optim.lr=0.003",
            "optim.weight_decay=0.0001", f"train.max_epochs={epochs}", f"train.out_dir={tmp_path / 'runs'}",
            f"train.name={name}", "train.log_every_n_steps=4", "eval.input_size=[96, 64]"]


def cli_args(tmp_path, data_root, epochs, name, *extra):
    """`spd train` arguments for the same run as :func:`overrides`: a config file and --set pairs."""
    config = tmp_path / f"{name}.yaml"
    config.write_text("train: {}\n")
    return [str(config)] + [item for o in overrides(tmp_path, data_root, epochs, name) + list(extra)
                            for item in ("--set", o)]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    # Domain B in the LIP layout: calm backgrounds, so a few CPU epochs learn visible structure.
    from spd.data.synthetic import SynthSpec, generate

    root = tmp_path_factory.mktemp("data")
    generate(root, SynthSpec(num=120, domain="B", seed=1, size=96, format="lip", val_fraction=0.2))
    return root


def background_baseline(reader):
    """mIoU and pixel accuracy of predicting the most frequent class (background) everywhere."""
    evaluator = Evaluator("lip", "lip", tasks=("parsing",))
    dataset = ParsingDataset(reader)
    for i in range(len(dataset)):
        item = dataset[i]
        evaluator.update(Prediction(parsing=torch.zeros_like(item["parsing"])), item)
    return evaluator.result({})


def mean_pose_pckh(train_reader, reader):
    """PCKh of predicting every joint at its mean position over the training images (relative to
    the image size): what a model that ignores the image scores."""
    positions = []
    for item in ParsingDataset(train_reader):
        h, w = item["parsing"].shape
        positions.append(item["keypoints"][:, :2] / torch.tensor([w, h]))
    mean = torch.nanmean(torch.stack(positions), 0)
    evaluator = Evaluator("lip", "lip", tasks=("parsing", "pose"))
    for item in ParsingDataset(reader):
        h, w = item["parsing"].shape
        evaluator.update(Prediction(keypoints=mean * torch.tensor([w, h])), item)
    return evaluator.result({}).pose["pckh"]["Total"]


class Interrupted(RuntimeError):
    pass


class InterruptAtStep(L.Callback):
    """Kills the run before step ``step`` trains, after that step's checkpoint was written."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Interrupted(f"killed before step {self.step} (epoch {trainer.current_epoch}, batch {batch_idx})")


# The resumed runs weight their losses by class: the counted weights must come back with the checkpoint.
BALANCED = ["loss.class_balance=0.5", "loss.part_balance=0.5"]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, data_root):
    config, _ = load_config(None, overrides(tmp_path_factory.mktemp("straight"), data_root, 2, "straight") + BALANCED)
    return train(config, device="cpu", progress=False)


# 96 training images in batches of 8: 12 steps an epoch. Killed at step 12: resumed from the
# checkpoint of epoch 0's last batch. At 18: from a mid-epoch checkpoint, skipping the 6 batches done.
# At 14, counting steps (train.max_steps) with checkpoints at epochs' ends only: Lightning resumes
# such runs as restarts, which trained the next epoch's first batch in the finished one and then
# shifted every later epoch's order by one when the checkpoint was written at the epoch's end.
@pytest.mark.parametrize("step,every,steps", [(12, 6, False), (18, 6, False), (14, 0, True)])
def test_an_interrupted_run_resumes_exactly(tmp_path, data_root, straight_run, step, every, steps):
    limit = ["train.max_epochs=-1", "train.max_steps=24", "train.val_every_n_epochs=2"] if steps else []
    config, _ = load_config(None, overrides(tmp_path, data_root, 2, "interrupted") + BALANCED +
                            [f"train.checkpoint_every_n_steps={every}", *limit])
    with pytest.raises(Interrupted):
        train(config, device="cpu", progress=False, callbacks=[InterruptAtStep(step)])
    resumed = train(config, device="cpu", resume=True, progress=False)
    assert resumed.global_step == straight_run.global_step == 24
    a = torch.load(resumed.last_checkpoint, weights_only=True)
    b = torch.load(straight_run.last_checkpoint, weights_only=True)
    differing = [k for k in a["state_dict"] if not torch.allclose(a["state_dict"][k].float(), b["state_dict"][k].float(),
                                                                   atol=1e-6)]
    assert not differing, differing[:5]
    assert a["state_dict"]["criterion.class_weights"].shape == (20,) and "criterion.part_weights" in a["state_dict"]
    assert a["hyper_parameters"]["config"]["train"]["max_epochs"] == (-1 if steps else 2)  # the resolved config is saved
    assert a["optimizer_states"] and a["lr_schedulers"]
    # The resumed run writes on in the interrupted attempt's logs: one file, both attempts' rows.
    assert sorted(p.name for p in (resumed.run_dir / "logs").iterdir()) == ["version_0"]
    assert sorted(p.name for p in (resumed.run_dir / "tensorboard").iterdir()) == ["version_0"]
    with open(resumed.run_dir / "logs" / "version_0" / "metrics.csv", newline="") as f:
        steps = sorted({int(row["step"]) for row in csv.DictReader(f)})
    assert steps[0] < step and steps[-1] >= 20


def test_a_short_training_learns_far_above_chance_on_held_out_images(tmp_path, data_root):
    """Train the CPU family's SPD model on 96 images (288 steps), save once, reload the checkpoint and score the
    24 held-out val images with the official protocol: parsing far above predicting background
    everywhere, and keypoints far above a constant guess (the mean joint position)."""
    config, _ = load_config(None, overrides(tmp_path, data_root, 24, "learn") + [
        "train.val_every_n_epochs=1000", "train.keep_checkpoints=0", "loss.dense_at=input", "loss.pose=0.1"])
    result = train(config, device="cpu", progress=False)
    assert len(list((result.run_dir / "checkpoints").iterdir())) == 1  # last.ckpt, nothing else kept
    model, _ = load_model(result.last_checkpoint)
    reader = open_dataset(data_root, "val")
    seen = []
    scores = evaluate_model(model, reader, config.eval, num_workers=0, on_prediction=lambda item, p: seen.append((item, p)))
    # The hook sees every sample in split order with the prediction that was scored.
    assert [item["id"] for item, _ in seen] == [r.id for r in reader.records]
    item, prediction = seen[3]
    alone = predict_image(model, item["image"], config.eval).parsing
    assert (prediction.parsing == alone).float().mean() > 0.999  # batched (4 images a pass) or alone
    # The metrics do not depend on the batch: at most a few pixels whose top two logits tie.
    one_by_one = evaluate_model(model, reader, config.eval, num_workers=0, batch_size=1)
    assert abs(one_by_one.parsing["miou"] - scores.parsing["miou"]) < 0.05
    assert one_by_one.pose["pckh"]["Total"] == pytest.approx(scores.pose["pckh"]["Total"], abs=0.5)
    chance = background_baseline(reader)
    assert scores.parsing["miou"] > 2 * chance.parsing["miou"], (scores.parsing, chance.parsing)
    assert scores.parsing["pixel_accuracy"] > chance.parsing["pixel_accuracy"] + 5
    # Domain B's people stand upright near the centre, so the constant guess already scores ~54.
    assert scores.pose["pckh"]["Total"] > mean_pose_pckh(open_dataset(data_root, "train"), reader) + 25, scores.pose


def test_a_run_counted_in_steps_resumes_exactly_twice_from_epoch_ends(tmp_path, data_root):
    """Killed after the checkpoints of epochs 0 and 1 (steps 12, 24 of 30): Lightning counted the epoch
    after a resume from an epoch's last batch one behind, so that a second resume trained on other
    samples (BatchEndCheckpoint.on_train_start)."""
    def config(name):
        return load_config(None, overrides(tmp_path, data_root, -1, name) + [
            "train.max_steps=30", "train.val_every_n_epochs=1000", "train.checkpoint_every_n_steps=0"])[0]

    straight = train(config("straight"), device="cpu", progress=False)
    for kill in (14, 26):
        with pytest.raises(Interrupted):
            train(config("cut"), device="cpu", resume=kill > 14, progress=False, callbacks=[InterruptAtStep(kill)])
    resumed = train(config("cut"), device="cpu", resume=True, progress=False)
    assert resumed.global_step == straight.global_step == 30
    a = torch.load(resumed.last_checkpoint, weights_only=True)["state_dict"]
    b = torch.load(straight.last_checkpoint, weights_only=True)["state_dict"]
    assert not [k for k in a if not torch.allclose(a[k].float(), b[k].float(), atol=1e-6)]


def test_nan_loss_stops_training_naming_the_step_and_term(tmp_path, data_root, monkeypatch):
    from spd.losses import total

    original = total.stage_terms

    def poisoned(*args):
        terms = original(*args)
        terms["pose"] = terms["pose"] * float("nan")
        return terms

    monkeypatch.setattr(total, "stage_terms", poisoned)
    config, _ = load_config(None, overrides(tmp_path, data_root, 1, "nan"))
    # The loss is looked at every log_every_n_steps (4 here) and before each checkpoint: no sync per step.
    with pytest.raises(FloatingPointError, match=r"step 3: the loss is nan .*pose=nan"):
        train(config, device="cpu", progress=False)


def test_a_loss_not_finite_in_one_process_stops_every_process():
    """Under DDP the processes decide together: one that stopped alone would leave the others in the
    gradient all-reduce until NCCL's timeout. Here the strategy reports another process's NaN."""
    from types import SimpleNamespace

    from predict_helpers import TINY
    from spd.losses import LossOutput
    from spd.training.module import SPDModule

    _, resolved = load_config(None, [*TINY, "model.preset=cpu_s"])
    module = SPDModule(resolved, initialise=False)
    decisions = []

    def reduce_boolean_decision(decision, all=True):
        decisions.append((decision, all))
        return False  # another process's loss is NaN (all=True: every process must be finite)

    module._trainer = SimpleNamespace(strategy=SimpleNamespace(reduce_boolean_decision=reduce_boolean_decision),
                                      log_every_n_steps=4, global_step=7)
    finite = LossOutput(torch.tensor(1.5), {"parsing": torch.tensor(1.5)})
    with pytest.raises(FloatingPointError, match=r"step 7: the loss is not finite in another process \(here 1.5\)"):
        module._check_finite(finite)
    assert decisions == [(True, True)]


def test_checkpoints_kept_and_earlier_runs_protected(tmp_path, data_root, capsys):
    """keep_checkpoints=1 keeps the newest epoch beside last.ckpt; a new run of the same name
    refuses to mix with the earlier run's checkpoints unless told to resume or overwrite."""
    config, _ = load_config(None, overrides(tmp_path, data_root, 3, "keep") + [
        "train.keep_checkpoints=1", "train.val_every_n_epochs=1000"])
    train(config, device="cpu", progress=False)
    folder = tmp_path / "runs" / "keep" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["epoch002-step000036.ckpt", "last.ckpt"]
    with pytest.raises(FileExistsError, match=r"keep/checkpoints holds 2 checkpoint\(s\) of an earlier run"):
        train(config, device="cpu", progress=False)
    args = cli_args(tmp_path, data_root, 1, "keep", "train.max_steps=2", "train.keep_checkpoints=0")
    assert main(["train", *args, "--device", "cpu"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["train", *args, "--device", "cpu", "--overwrite"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]
    # An --overwrite killed (kill -9) before its first checkpoint left the earlier run set aside and
    # an empty folder: the next run puts them back first, so a plain run is refused and loses nothing.
    aside = folder.parent / ".checkpoints.replaced"
    folder.rename(aside)
    folder.mkdir()
    kept = (aside / "last.ckpt").read_bytes()
    with pytest.raises(FileExistsError, match=r"keep/checkpoints holds 1 checkpoint\(s\) of an earlier run"):
        train(config, device="cpu", progress=False)
    assert not aside.exists() and (folder / "last.ckpt").read_bytes() == kept
    assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 2


def test_evaluate_saved_predictions_and_cross_dataset(tmp_path, data_root, capsys):
    reader = open_dataset(data_root, "val")
    preds = tmp_path / "preds"
    preds.mkdir()
    for record in reader.records:  # a perfect method: the ground truth itself
        (preds / f"{record.id}.png").write_bytes(record.parsing.read_bytes())
    result = evaluate_predictions(preds, reader)
    assert result.parsing["miou"] == 100.0 and result.parsing["pixel_accuracy"] == 100.0
    # The same LIP-space predictions scored through the shared LIP-ATR classes, via the CLI.
    assert main(["evaluate", "--predictions", str(preds), "--data", str(data_root), "--map", "super",
                 "--out", str(tmp_path / "eval")]) == 0
    doc = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert doc["parsing"]["miou"] == 100.0 and doc["meta"]["mapping"]["name"] == "lip-atr-super9"
    assert (tmp_path / "eval" / "per_class_iou.png").is_file() and (tmp_path / "eval" / "metrics.md").is_file()
    # A class value outside the label space (or 255) is an error naming the file, not a silent score.
    first = sorted(preds.iterdir())[0]
    original = first.read_bytes()
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(first)
    assert main(["evaluate", "--predictions", str(preds), "--data", str(data_root)]) == 2
    err = capsys.readouterr().err
    assert first.name in err and "outside 0..19" in err
    first.write_bytes(original)
    # A missing prediction is an error naming it, not a silent skip.
    next(preds.iterdir()).unlink()
    assert main(["evaluate", "--predictions", str(preds), "--data", str(data_root)]) == 2
    assert "have no prediction PNG" in capsys.readouterr().err
    # spd report collects evaluation JSONs into a table.
    assert main(["report", str(tmp_path / "eval" / "metrics.json"), str(tmp_path / "eval" / "metrics.json"),
                 "--out", str(tmp_path / "report")]) == 0
    table = (tmp_path / "report" / "report.md").read_text()
    assert "| variant | data | runs | pixel acc | mean acc | mIoU | PCKh |" in table and (tmp_path / "report" / "report.png").is_file()


def _samples(path) -> dict[int, list[dict]]:
    """rank -> the recorded steps of that process (a resumed run's rows after the interrupted one's)."""
    rows = {}
    for rank in (0, 1):
        rows[rank] = [json.loads(line) for line in open(f"{path}.rank{rank}", encoding="utf-8")]
    return rows


def test_ddp_splits_each_epoch_across_processes_and_resumes_exactly(tmp_path, data_root):
    """Two CPU processes (gloo), started as a user starts them (Lightning runs the program again for
    rank 1). Within an epoch the processes train on disjoint samples that together cover the split;
    the order differs between epochs; data.batch_size is the global batch (96 images in batches of
    8: 12 steps an epoch, as on one device); a run interrupted mid-epoch and resumed trains on
    exactly the samples, augmented exactly as, in the uninterrupted run; and validation scores each
    of 23 images once (no padding to an even count), as one process scores them."""
    script = Path(__file__).parent / "ddp_sample_ids.py"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parent)}
    root = tmp_path / "data"  # the module's data with 23 val images: two processes cannot split them evenly
    shutil.copytree(data_root, root)
    val_list = next(root.rglob("val_id.txt"))
    val_list.write_text("".join(val_list.read_text().splitlines(keepends=True)[:23]))

    def run(name: str, interrupt: int = 0, resume: int = 0) -> subprocess.CompletedProcess:
        sets = overrides(tmp_path, root, 2, name) + ["train.devices=2", "train.strategy=ddp",
                                                     "train.checkpoint_every_n_steps=6", "train.val_every_n_epochs=2"]
        return subprocess.run([sys.executable, str(script), str(tmp_path / f"{name}.jsonl"), str(interrupt), str(resume),
                               *sets], capture_output=True, text=True, timeout=900, env=env)

    done = run("straight")
    assert done.returncode == 0, done.stderr[-3000:]
    straight = _samples(tmp_path / "straight.jsonl")
    train_ids = {r.id for r in open_dataset(root, "train").records}
    scored = [[i for row in straight[rank] if "val_ids" in row for i in row["val_ids"]] for rank in (0, 1)]
    val_reader = open_dataset(root, "val")
    assert sorted(scored[0] + scored[1]) == sorted(r.id for r in val_reader.records) and len(val_reader) == 23
    with open(tmp_path / "runs" / "straight" / "logs" / "version_0" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    logged = [float(row["val/miou"]) for row in rows if row.get("val/miou")]
    # The logged training loss is the mean of the processes' losses, not rank 0's own.
    per_rank = [{row["loss_at_step"]: row["loss"] for row in straight[rank] if "loss" in row} for rank in (0, 1)]
    losses = {int(row["step"]): float(row["loss"]) for row in rows if row.get("loss")}
    assert len(losses) >= 5 and all(per_rank[0][s + 1] != per_rank[1][s + 1] for s in losses)
    for step, value in losses.items():
        assert value == pytest.approx((per_rank[0][step + 1] + per_rank[1][step + 1]) / 2, rel=1e-5), step
    config, _ = load_config(None, overrides(tmp_path, root, 2, "straight"))
    alone = evaluate_model(load_model(tmp_path / "runs" / "straight" / "checkpoints" / "last.ckpt")[0], val_reader,
                           validation_protocol(config), num_workers=0)
    assert len(logged) == 1 and abs(logged[0] - alone.parsing["miou"]) < 0.1, (logged, alone.parsing["miou"])
    straight = {rank: [row for row in rows if "ids" in row] for rank, rows in straight.items()}
    for epoch in (0, 1):
        per_rank = [[i for row in straight[rank] if row["epoch"] == epoch for i in row["ids"]] for rank in (0, 1)]
        assert len(per_rank[0]) == len(per_rank[1]) == 48  # 12 steps of 4 per process
        assert not set(per_rank[0]) & set(per_rank[1]) and set(per_rank[0]) | set(per_rank[1]) == train_ids
    epoch0 = [row["ids"] for row in straight[0] if row["epoch"] == 0]
    assert epoch0 != [row["ids"] for row in straight[0] if row["epoch"] == 1]
    assert [row["step"] for row in straight[0]] == list(range(24))
    checkpoint = torch.load(tmp_path / "runs" / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 24 and checkpoint["hyper_parameters"]["config"]["train"]["devices"] == 2

    assert run("cut", interrupt=18).returncode != 0
    resumed = run("cut", resume=1)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    cut = _samples(tmp_path / "cut.jsonl")

    def seen(rows):
        return {row["step"]: (row["ids"], row["image_sum"], row["label_sum"]) for row in rows if row.get("step", -1) >= 18}

    for rank in (0, 1):
        assert seen(cut[rank]) == seen(straight[rank])


def frozen_statistics_run(tmp_path, data_root, name, *extra):
    """Overrides for a small dilated model with frozen batch norm starting from an encoder file whose
    statistics are random (not batch norm's 0 / 1), and those statistics as the file holds them."""
    from spd.model.resnet import DilatedResNet

    torch.manual_seed(0)
    encoder = DilatedResNet(18, 8, frozen_bn=False, layout="torchvision")
    for m in encoder.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    torch.save(encoder.state_dict(), tmp_path / "encoder.pth")
    stats = {f"model.trunk.encoder.{k}": v for k, v in encoder.state_dict().items() if "running" in k or "num_batches" in k}
    sets = [f"data.root={data_root}", "model.preset=s", "model.refine_stages=1", "model.train_scales=[1.0]",
            "model.dilated={depth: 18, width: 0.125, layout: torchvision, frozen_bn: true}",
            f"model.backbone_weights={tmp_path / 'encoder.pth'}", "augment.size=[96, 64]", "augment.fit=true",
            "data.batch_size=4", "data.num_workers=0", "optim.lr=0.01", "train.max_steps=2", "train.max_epochs=-1",
            f"train.out_dir={tmp_path / 'runs'}", f"train.name={name}", "eval.input_size=[96, 64]", *extra]
    return sets, stats


def assert_statistics_unchanged(checkpoint_path, stats) -> None:
    state = torch.load(checkpoint_path, weights_only=True)["state_dict"]
    assert len(stats) == 60  # running mean, variance and count of ResNet-18's 20 batch-norm layers
    moved = [k for k, v in stats.items() if not torch.equal(state[k], v)]
    assert not moved, f"{len(moved)} of {len(stats)} frozen statistics changed, e.g. {moved[:3]}"
    # the affine parameters do train
    assert not torch.equal(state["model.trunk.encoder.layer4.1.bn2.bias"], torch.zeros(512))


def test_frozen_batch_norm_stays_frozen_through_training(tmp_path, data_root):
    """``model.dilated.frozen_bn: true`` (every LIP / ATR / JPPNet recipe): two steps of ``spd.train``
    and a validation leave every statistic bit for bit as loaded. Lightning never calls ``train()``
    when fitting starts, so a trunk that froze its layers there trained them on 4-image batches."""
    sets, stats = frozen_statistics_run(tmp_path, data_root, "frozen")
    result = train(load_config(None, sets)[0], device="cpu", progress=False)
    assert result.global_step == 2
    assert_statistics_unchanged(result.last_checkpoint, stats)


def test_frozen_batch_norm_stays_frozen_under_ddp_with_sync_batchnorm(tmp_path, data_root):
    """The same with two processes (gloo) and ``train.sync_batchnorm: true``: Lightning's conversion
    to SyncBatchNorm must leave frozen layers frozen (and, with no other batch norm in the model,
    it runs on the CPU too)."""
    sets, stats = frozen_statistics_run(tmp_path, data_root, "frozen_ddp", "train.devices=2", "train.strategy=ddp",
                                        "train.sync_batchnorm=true")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run([sys.executable, str(Path(__file__).parent / "ddp_sample_ids.py"), str(tmp_path / "ids.jsonl"),
                           "0", "0", *sets], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sync_batchnorm" not in done.stderr  # passed to Lightning, not dropped with a warning
    assert_statistics_unchanged(tmp_path / "runs" / "frozen_ddp" / "checkpoints" / "last.ckpt", stats)


def test_bf16_mixed_precision_trains(tmp_path, data_root):
    """--precision bf16-mixed (the paper configs' setting) through the CLI; CPU autocast here,
    the same Lightning plugin on a GPU. The losses must stay finite."""
    args = cli_args(tmp_path, data_root, 1, "bf16", "train.max_steps=3")
    assert main(["train", *args, "--device", "cpu", "--precision", "bf16-mixed"]) == 0
    checkpoint = torch.load(tmp_path / "runs" / "bf16" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3
    assert checkpoint["hyper_parameters"]["config"]["train"]["precision"] == "bf16-mixed"
    assert all(p.dtype == torch.float32 for p in checkpoint["state_dict"].values() if p.is_floating_point())
    # Evaluated under bf16 autocast, the metrics say so; a report beside a float32 evaluation warns.
    ckpt = str(tmp_path / "runs" / "bf16" / "checkpoints" / "last.ckpt")
    for precision in ("bf16", "32"):
        assert main(["evaluate", ckpt, "--data", str(data_root), "--device", "cpu", "--workers", "0",
                     "--precision", precision, "--out", str(tmp_path / f"eval_{precision}")]) == 0
    protocols = [json.loads((tmp_path / f"eval_{p}" / "metrics.json").read_text())["meta"]["protocol"] for p in ("bf16", "32")]
    assert protocols[0]["precision"] == "bf16" and "precision" not in protocols[1]
    assert main(["report", *(str(tmp_path / f"eval_{p}" / "metrics.json") for p in ("bf16", "32")),
                 "--out", str(tmp_path / "report")]) == 0
    assert "different protocols" in next((tmp_path / "report").glob("*.md")).read_text()


def test_bf16_autocast_gives_the_float32_masks(straight_run, data_root):
    """What ``--precision auto`` may switch to where bf16 is faster: the same parsing and part-index
    masks as float32 on at least 99.5% of the pixels (a trained model, the official protocol)."""
    loaded = load_checkpoint(straight_run.last_checkpoint, "cpu")
    dataset = ParsingDataset(open_dataset(data_root, "val"))
    images = [dataset[i]["image"] for i in range(6)]
    full = predict_batch(loaded.model, images, loaded.protocol, "32")
    bf16 = predict_batch(loaded.model, images, loaded.protocol, "bf16")
    pixels = sum(a.parsing.numel() for a in full)
    for name in ("parsing", "dp_index"):
        same = sum(int((getattr(a, name) == getattr(b, name)).sum()) for a, b in zip(full, bf16))
        assert same / pixels >= 0.995, (name, same / pixels)


def test_precision_auto_trains_in_the_mode_this_machine_runs_fastest(tmp_path, data_root, monkeypatch):
    """train.precision auto on a CPU with native bf16: a training step timed in each mode (here
    given: bf16 with channels-last fastest), the run trains in it and its saved config says so."""
    import spd.inference.precision as precision
    import spd.training.auto_precision as auto_precision

    monkeypatch.setenv("SPD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"amx_bf16", "avx512_bf16"})
    timed = []

    def step_seconds(model, size, batch, p, channels_last, runs=2):
        timed.append((tuple(size), batch, p, channels_last))
        return {("32", False): 1.0, ("32", True): 0.9, ("bf16", False): 0.7, ("bf16", True): 0.5}[p, channels_last]

    monkeypatch.setattr(auto_precision, "step_seconds", step_seconds)
    args = cli_args(tmp_path, data_root, 1, "auto", "train.max_steps=2")
    assert main(["train", *args, "--device", "cpu", "--precision", "auto"]) == 0
    saved = torch.load(tmp_path / "runs" / "auto" / "checkpoints" / "last.ckpt", weights_only=True)
    train = saved["hyper_parameters"]["config"]["train"]
    assert (train["precision"], train["channels_last"]) == ("bf16-mixed", True)
    assert len(timed) == 4 and timed[0][1] <= 2  # every mode, at most two images per step
    # A resumed run keeps what it trained in, whatever this machine would now choose.
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    args = cli_args(tmp_path, data_root, 1, "auto", "train.max_steps=3")
    assert main(["train", *args, "--device", "cpu", "--precision", "auto", "--resume"]) == 0
    saved = torch.load(tmp_path / "runs" / "auto" / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 3
    assert saved["hyper_parameters"]["config"]["train"]["precision"] == "bf16-mixed"
    # Without native bf16: 32-true, nothing timed (no training needed to see it).
    from spd.training.auto_precision import resolve_train_precision

    timed.clear()
    config = load_config(tmp_path / "auto.yaml", [*overrides(tmp_path, data_root, 1, "auto32"), "train.precision=auto"])[0]
    assert resolve_train_precision(config, "cpu")[0].train.precision == "32-true" and not timed


def test_a_timed_training_step_runs_forward_and_backward():
    from spd.training.auto_precision import step_seconds

    model = SPDNet(preset("cpu_s"))
    assert 0 < step_seconds(model, (64, 48), 1, "32", True, runs=1) < 60
    assert all(p.grad is None for p in model.parameters())  # no gradient left behind


def test_precision_auto_is_refused_for_several_cpu_processes():
    from spd.config import ExperimentConfig, TrainConfig
    from spd.ops.errors import InputError
    from spd.training.auto_precision import resolve_train_precision

    config = ExperimentConfig(train=TrainConfig(precision="auto"))
    with pytest.raises(InputError, match="with 2 processes on the CPU they would time each other"):
        resolve_train_precision(config, "cpu", None, processes=2)
    assert resolve_train_precision(ExperimentConfig(), "cpu", None, processes=2)[0].train.precision == "32-true"
