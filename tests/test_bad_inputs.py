"""Bad inputs get a clear error naming the key, file or line at fault, before any work starts: one
table per kind of input."""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from spd.cli.main import main
from spd.config import ConfigError, load_config
from spd.data.detect import open_dataset
from spd.data.errors import DataError
from spd.data.pose_csv import read_pose_csv
from spd.training.train import check_resumable, check_split_sizes, check_validation_shards

CONFIG_CASES = [
    ("k=[1", r"--set 'k=\[1': the value is not valid YAML"),
    ("train.max_epochs.x=1", r"train.max_epochs: expected an integer, got \{.x.: 1\}"),
    ("train.checkpoint_every_n_steps=-1", r"train.checkpoint_every_n_steps is out of range: -1"),
    ("train.accumulate_grad_batches=0", r"train.accumulate_grad_batches is out of range: 0"),
    ("train.max_epochs=0", r"train.max_epochs is out of range: 0"),
    ("train.max_steps=0", r"train.max_steps is out of range: 0"),
    ("train.devices=0", r"train.devices is out of range: 0"),
    ("train.log_every_n_steps=0", r"train.log_every_n_steps is out of range"),
    ("data.batch_size=0", r"data.batch_size is out of range: 0"),
    ("data.num_workers=-1", r"data.num_workers is out of range: -1"),
    ("augment.size=[-5, 64]", r"augment.size is out of range: \[-5, 64\]"),
    ("augment.scale=[1.2, 0.8]", r"augment.scale is out of range"),
    ("augment.flip=2", r"augment.flip is out of range: 2"),
    ("augment.recipe=official", r"augment.recipe must be one of affine, jppnet"),
    ("optim.lr=-1", r"optim.lr is out of range: -1"),
    ("optim.momentum=1", r"optim.momentum is out of range: 1"),
    ("loss.resize=bicubic", r"loss.resize must be one of"),
    ("loss.part_at=full", r"loss.part_at must be one of"),
    ("loss.uv_at=input", r"loss.uv_at no longer exists: the U, V loss at input resolution"),
    ("loss.pose=-1", r"loss.pose must be >= 0, got -1"),
    ("loss.densepose=.nan", r"loss.densepose: expected a number, got nan"),
    ("loss.balance=learned", r"loss.balance must be one of"),
    ("loss.class_balance=2", r"loss.class_balance must be in \[0, 1\], got 2"),
    ("model.refine_fuse=3", r"model.refine_fuse no longer exists: .*docs/changelog.md"),
    ("model.layout=keras", r"model.layout was renamed model.dilated.layout"),
    ("model.dilated.layout=keras", r"model.dilated.layout must be one of caffe, torchvision, got 'keras'"),
    ("model.preset=resnet", r"unknown model preset 'resnet'"),
    ("model.dilated.head_init=zeros", r"model.dilated.head_init must be one of jppnet, kaiming"),
    ("model.train_scales=[0.5, 1.0]", r"model.train_scales must start with 1.0"),
    ("model.fpn.decoder_width=4", r"model.fpn: .*|model.fpn.decoder_width must be >= 8|exactly one family"),
    ("data.pin_memory=false", r"data.pin_memory no longer exists"),
    ("data.parsing_fraction=0", r"data.parsing_fraction is out of range: 0"),
    ("train.precision=fp8", r"train.precision must be one of"),
    ("eval.input_size=[100000, 100000]", r"eval.input_size \[100000, 100000\] at scale 1.0 is 10000 megapixels"),
    ("eval.interpolation=cubic", r"eval.interpolation must be one of"),
]


@pytest.mark.parametrize("override, message", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_values_are_named_when_the_config_loads(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_the_command_line_reports_them_without_a_traceback(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("train: {}\n")
    assert main(["train", str(config), "--set", "train.max_epochs.x=1"]) == 2
    err = capsys.readouterr().err
    assert "spd: error:" in err and "Traceback" not in err and "c.yaml: train.max_epochs: expected an integer" in err


def test_verbose_shows_the_traceback(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("train: {max_epochs: 0}\n")
    assert main(["-v", "train", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "train.max_epochs is out of range" in err


# --- data ------------------------------------------------------------------------------------

def _csv_row(name: str) -> str:
    return ",".join([name] + ["10", "20", "1"] * 16)


def test_an_empty_pose_csv_is_an_error_naming_it(tmp_path):
    path = tmp_path / "lip_train_set.csv"
    path.write_text("\n\n")
    with pytest.raises(DataError, match=r"lip_train_set.csv: no pose rows \(the file is empty\)"):
        read_pose_csv(path)


def test_a_latin1_pose_csv_names_its_file_and_line(tmp_path):
    path = tmp_path / "lip_train_set.csv"
    path.write_bytes((_csv_row("a.jpg") + "\n" + _csv_row("caf\xe9.jpg") + "\n").encode("latin-1"))
    with pytest.raises(DataError, match=r"lip_train_set.csv:2: not UTF-8 text \(byte 0xe9 at column 4\)"):
        read_pose_csv(path)


class _Split:
    def __init__(self, n: int, split: str):
        self.n, self.split, self.root = n, split, Path("data/x")

    def __len__(self) -> int:
        return self.n


@pytest.mark.parametrize("train, val, batch, message", [
    (0, 5, 4, r"data/x: split 'train' has 0 images, fewer than one batch of 4"),
    (3, 5, 4, r"split 'train' has 3 images, fewer than one batch of 4: add images or lower data.batch_size"),
    (8, 0, 4, r"data/x: split .val. has no images \(training needs at least one\)"),
])
def test_splits_too_small_to_train_on_are_refused(train, val, batch, message):
    with pytest.raises(DataError, match=message):
        check_split_sizes(_Split(train, "train"), _Split(val, "val"), batch)
    check_split_sizes(_Split(batch, "train"), _Split(1, "val"), batch)  # one batch is enough


def test_a_validation_split_smaller_than_the_processes_is_refused():
    """A process with no validation image would skip the validation the others wait for (a hang)."""
    with pytest.raises(DataError, match=r"data/x: split 'val' has 3 images, fewer than the 4 processes that validate it"):
        check_validation_shards(_Split(3, "val"), 4)
    check_validation_shards(_Split(4, "val"), 4)


# --- resuming --------------------------------------------------------------------------------

def _module(optimiser: str = "adamw"):
    from predict_helpers import TINY

    from spd.training.module import SPDModule

    _, resolved = load_config(None, [*TINY, "model.preset=cpu_s", f"optim.name={optimiser}"])
    return SPDModule(resolved, initialise=False)


def _resume_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.ckpt"
    module = _module()
    group = {"lr": 1e-3, "betas": (0.9, 0.999)} if kind != "sgd" else {"lr": 1e-3, "momentum": 0.9}
    good = {"state_dict": module.state_dict(), "loops": {}, "optimizer_states": [{"param_groups": [group]}],
            "global_step": 17, "spd": {"model": module.model.metadata()}}
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(bytes(range(256)) * 20)
    elif kind == "yaml":
        path.write_text("train: {max_epochs: 3}\n")
    elif kind == "truncated":
        torch.save(good, path)
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "bare":
        torch.save(module.model.state_dict(), path)
    elif kind == "other":
        state = dict(good["state_dict"])
        state["model.initial.parsing.out.bias"] = torch.zeros(5)
        torch.save(dict(good, state_dict=state), path)
    else:
        torch.save(good, path)
    return path


@pytest.mark.parametrize("kind, message", [
    ("empty", r"empty.ckpt: the checkpoint is empty"),
    ("random", r"random.ckpt: not a checkpoint \(neither the zip archive torch.save writes"),
    ("yaml", r"yaml.ckpt: not a checkpoint \(neither the zip archive torch.save writes"),
    ("truncated", r"truncated.ckpt: (not a checkpoint|cannot read the checkpoint)"),
    ("bare", r"bare.ckpt: not a checkpoint of `spd train`"),
    ("other", r"other.ckpt: the weights do not fit the model this config builds .*'model.initial.parsing.out.bias' "
              r"has shape \(5,\) in the file, \(20,\) in the model"),
    ("sgd", r"sgd.ckpt: the run was trained with optim.name sgd, this config says adamw"),
])
def test_resume_refuses_what_it_cannot_continue_naming_the_file(tmp_path, kind, message):
    with pytest.raises(ValueError, match=message) as caught:
        check_resumable(str(_resume_file(tmp_path, kind)), _module())
    assert "weights_only" not in str(caught.value)  # never advice to unpickle an unknown file


def test_resume_accepts_its_own_checkpoint(tmp_path):
    path = _resume_file(tmp_path, "good")
    assert zipfile.is_zipfile(path)
    assert check_resumable(str(path), _module()) == 17
    with pytest.raises(ValueError, match="absent.ckpt: checkpoint not found"):
        check_resumable(str(tmp_path / "absent.ckpt"), _module())


# --- run folders: one train at a time, nothing a killed run leaves behind blocks the next ------

def test_a_run_folder_in_use_is_refused_and_freed_when_its_holder_dies(tmp_path):
    import subprocess
    import sys

    from spd.training.run_lock import RunInUse, run_dir_lock

    run = tmp_path / "run"
    with run_dir_lock(run):
        with pytest.raises(RunInUse, match=r"run is in use by another spd train \(pid \d+"):
            with run_dir_lock(run):
                pass
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from spd.training.run_lock import run_dir_lock\n"
                               f"with run_dir_lock(Path({str(run)!r})):\n print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunInUse, match=f"pid {holder.pid}"):
            with run_dir_lock(run):
                pass
    finally:
        holder.kill()  # SIGKILL: no cleanup code runs
        holder.wait()
    with run_dir_lock(run):  # the system dropped the dead holder's lock
        pass


def test_what_a_killed_run_leaves_is_cleaned_and_does_not_block(tmp_path):
    from spd.training.checkpoint_io import AtomicCheckpointIO, checkpoints_in, clean_checkpoint_folder
    from spd.training.train import refuse_earlier_run

    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    leftovers = [folder / ".last.k3j2.partial", folder / ".epoch000-step000010.x9.tmp.ckpt"]
    for p in leftovers:
        p.write_bytes(b"half")
    refuse_earlier_run(tmp_path / "run", resume=False, overwrite=False)  # temporaries are no earlier run
    assert checkpoints_in(folder) == []
    kept = [folder / "epoch000-step000010.ckpt", folder / "last.ckpt"]
    orphan = folder / "epoch001-step000020.ckpt"  # saved just before the kill, ahead of last.ckpt
    for p in kept + [orphan]:
        p.write_bytes(b"ckpt")
    assert sorted(clean_checkpoint_folder(folder, resume_step=10)) == sorted(leftovers + [orphan])
    assert checkpoints_in(folder) == sorted(kept)
    # and the writer's own temporaries never look like checkpoints
    AtomicCheckpointIO().save_checkpoint({"x": torch.zeros(1)}, folder / "epoch002-step000030.ckpt")
    assert not list(folder.glob(".*")) and (folder / "epoch002-step000030.ckpt").is_file()


@pytest.mark.parametrize("kind", ["under a file", "name too long"])
def test_operating_system_errors_name_the_path_without_a_traceback(tmp_path, capsys, kind):
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "data" if kind == "under a file" else tmp_path / ("n" * 300)
    assert main(["data", "synth", str(target), "--num", "2", "--no-sheet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spd: error: ") and "Traceback" not in err
    assert str(tmp_path / "afile") in err or "File name too long" in err


def test_bad_files_are_found_before_training_starts(synth_lip, tmp_path, caplog):
    """Headers and sizes of every file of a split are read up front: an error naming the files, or
    with data.skip_corrupt the samples left out by name."""
    import shutil

    import numpy as np
    from PIL import Image

    from spd.data.detect import open_dataset
    from spd.data.scan import verified

    root = tmp_path / "lip"
    shutil.copytree(synth_lip, root)
    ids = (root / "TrainVal_images" / "train_id.txt").read_text().split()
    (root / "TrainVal_images" / "train_images" / f"{ids[0]}.jpg").write_bytes(b"\xff\xd8 garbage")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "TrainVal_parsing_annotations" / "train_segmentations"
                                                       / f"{ids[1]}.png")
    with pytest.raises(DataError, match=rf"split 'train': 2 of 12 samples have bad files .*{ids[0]}.jpg: cannot read "
                                        rf"as an image.*{ids[1]}.png: is 10x10, its image {ids[1]}.jpg is 77x96"):
        verified(open_dataset(root, "train"), skip_bad=False)
    reader = verified(open_dataset(root, "train"), skip_bad=True)
    assert len(reader) == 10 and ids[0] not in {r.id for r in reader.records}
    assert sum("leaving out a sample" in r.message for r in caplog.records) == 2


# --- round two: nothing lost, nothing silent --------------------------------------------------

def _tiny_run(tmp_path: Path, root: Path, name: str = "run") -> list[str]:
    from predict_helpers import TINY

    return [*TINY, f"data.root={root}", f"train.out_dir={tmp_path / 'runs'}", f"train.name={name}",
            "data.batch_size=2", "data.num_workers=0", "augment.size=[64, 48]", "train.max_steps=2",
            "train.val_every_n_epochs=1000"]


def test_overwrite_checks_everything_before_it_touches_the_earlier_run(tmp_path, synth_lip):
    """--overwrite with a typo in data.root (or anything else wrong) leaves the earlier run's
    checkpoints in place; a good run replaces them only once it has its own first checkpoint."""
    from spd.training import train

    config, _ = load_config(None, _tiny_run(tmp_path, synth_lip))
    first = train(config, device="cpu", progress=False)
    before = first.last_checkpoint.read_bytes()
    typo, _ = load_config(None, _tiny_run(tmp_path, tmp_path / "no_such_data"))
    with pytest.raises(DataError, match="no_such_data"):
        train(typo, device="cpu", progress=False, overwrite=True)
    assert first.last_checkpoint.read_bytes() == before
    assert not (first.run_dir / ".checkpoints.replaced").exists()
    second = train(config, device="cpu", progress=False, overwrite=True)
    assert second.last_checkpoint.is_file() and not (first.run_dir / ".checkpoints.replaced").exists()


def test_predict_does_not_read_its_own_outputs_back(tmp_path, capsys):
    from PIL import Image

    from predict_helpers import write_checkpoint

    photos = tmp_path / "in"
    photos.mkdir()
    Image.new("RGB", (20, 30), "white").save(photos / "x.png")
    ckpt = write_checkpoint(tmp_path / "m.ckpt")
    for _ in range(2):
        assert main(["predict", str(ckpt), str(photos), "--out", str(photos / "out"), "--device", "cpu",
                     "--overwrite"]) == 0
        captured = capsys.readouterr()
        assert "predicted 1 of 1 inputs" in captured.out and "not reading" in captured.err
    assert not list((photos / "out").rglob("out"))  # no out/out/x_iuv_iuv.png


def test_a_model_file_with_nan_weights_is_refused_naming_the_parameter(tmp_path, capsys):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    from predict_helpers import write_checkpoint

    ckpt = write_checkpoint(tmp_path / "m.ckpt")
    assert main(["export", str(ckpt), "--format", "safetensors", "--out", str(tmp_path / "m.safetensors")]) == 0
    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(tmp_path / "m.safetensors"))
    state["initial.pose.out.weight"][0, 0] = float("nan")
    save_file(state, str(tmp_path / "nan.safetensors"), metadata=meta)
    capsys.readouterr()
    for command in (["predict", str(tmp_path / "nan.safetensors"), str(ckpt), "--out", str(tmp_path / "o")],
                    ["export", str(tmp_path / "nan.safetensors"), "--format", "onnx", "--out", str(tmp_path / "x.onnx")]):
        assert main(command) == 2
        assert "weight 'initial.pose.out.weight' holds 1 NaN or infinite value" in capsys.readouterr().err


def test_keypoint_json_never_holds_nan_or_infinity():
    import json

    from spd.inference import Prediction
    from spd.predict.writers import keypoints_record

    record = keypoints_record(Prediction(keypoints=torch.tensor([[1.0, float("nan")], [2.0, 3.0]]),
                                         keypoint_scores=torch.tensor([float("-inf"), 0.5]), joints=("a", "b")))
    assert record["keypoints"] == [1.0, None, None, 2.0, 3.0, 0.5] and record["score"] is None
    json.dumps(record, allow_nan=False)  # strict JSON


CLI_CASES = [
    (["predict", "m.ckpt", "x.png", "--out", "o", "--min-score", "nan"], "argument --min-score: must be a finite number"),
    (["predict", "m.ckpt", "x.png", "--out", "o", "--input-size", "100000", "100000"],
     "argument --input-size: must be within 8..8192, got 100000"),
    (["predict", "m.ckpt", "x.png", "--out", "o", "--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
    (["predict", "m.ckpt", "x.png", "--out", "o", "--scales", "-1"], "argument --scales: must be a finite number > 0"),
    (["serve", "m.ckpt", "--max-mb", "0"], "argument --max-mb: must be a finite number > 0"),
    (["serve", "m.ckpt", "--max-mb", "-1"], "argument --max-mb: must be a finite number > 0"),
    (["serve", "m.ckpt", "--port", "80000"], "argument --port: must be within 0..65535, got 80000"),
    (["evaluate", "m.ckpt", "--data", "d", "--workers", "-1"], "argument --workers: must be >= 0, got -1"),
    (["export", "m.ckpt", "--format", "onnx", "--input-size", "4", "4"], "argument --input-size: must be within 8..8192"),
    (["demo", "--cross-domain", "-3"], "argument --cross-domain: must be >= 0, got -3"),
    (["data", "synth", "out", "--val-fraction", "1.5"], "argument --val-fraction: must be a finite number within 0..1"),
    (["model", "summary", "cpu_s", "--flops", "0"], "argument --flops: must be within 8..8192, got 0"),
]


@pytest.mark.parametrize("argv, message", CLI_CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in CLI_CASES])
def test_every_numeric_option_is_checked_when_the_command_line_is_parsed(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_check_and_training_agree_on_split_and_keypoint_rules(tmp_path, fixtures, capsys):
    """One rule, one place: an empty val split is a problem for both; a negative coordinate is a
    missing joint for both; a visibility of 7 is an error for both, naming the line."""
    import shutil

    from spd.data.check import check_dataset

    root = tmp_path / "lip"
    shutil.copytree(fixtures / "lip_official", root)
    val_ids = next(root.rglob("val_id.txt"))
    val_ids.write_text("")
    assert any("split 'val' has no images" in str(p) for p in check_dataset(root).problems)
    with pytest.raises(DataError, match="split 'val' has no images"):
        check_split_sizes(open_dataset(root, "train"), open_dataset(root, "val"), 1)

    csv = next(root.rglob("lip_train_set.csv"))
    rows = csv.read_text().splitlines()
    first = rows[0].split(",")
    first[1:4] = ["-1", "-1", "1"]  # joint 0 at a negative position: missing
    rows[0] = ",".join(first)
    csv.write_text("\n".join(rows) + "\n")
    assert not [p for p in check_dataset(root).problems if "outside" in str(p)]
    record = open_dataset(root, "train").records[0]
    assert np.isnan(record.keypoints[0]).all()

    first[6] = "7"  # the visibility of joint 1
    rows[0] = ",".join(first)
    csv.write_text("\n".join(rows) + "\n")
    assert any("lip_train_set.csv:1: visibility values [7.0]" in str(p) for p in check_dataset(root).problems)
    with pytest.raises(DataError, match=r"lip_train_set.csv:1: visibility values \[7.0\] are not one of 0, 1, 2"):
        open_dataset(root, "train")


def test_training_warns_about_labels_that_look_compressed(tmp_path, synth_lip, caplog):
    import shutil

    from PIL import Image

    from spd.training import train

    root = tmp_path / "data"
    shutil.copytree(synth_lip, root)
    label = sorted(root.rglob("train_segmentations/*.png"))[0]
    noisy = np.random.default_rng(0).integers(0, 20, Image.open(label).size[::-1], dtype=np.uint8)
    Image.fromarray(noisy).save(label)
    config, _ = load_config(None, _tiny_run(tmp_path, root, "jpeg"))
    caplog.set_level("WARNING")
    train(config, device="cpu", progress=False)
    assert any("look lossily compressed" in r.getMessage() and label.name in r.getMessage() for r in caplog.records)


def test_malformed_files_are_named_without_a_traceback(tmp_path, fixtures, capsys):
    from predict_helpers import write_checkpoint

    ckpt = write_checkpoint(tmp_path / "m.ckpt")
    (tmp_path / "bad.yaml").write_text("shared: [unclosed\n")
    assert main(["evaluate", str(ckpt), "--data", str(fixtures / "lip_official"), "--map", "shared", "--mapping",
                 str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: not valid YAML" in err and "Traceback" not in err
    (tmp_path / "latin.yaml").write_bytes("train: {name: caf\xe9}\n".encode("latin-1"))
    assert main(["train", str(tmp_path / "latin.yaml")]) == 2
    assert "latin.yaml: not a YAML config (not UTF-8 text: byte 0xe9" in capsys.readouterr().err
    (tmp_path / "config.ckpt").write_text("train: {max_epochs: 3}\n")
    (tmp_path / "random.ckpt").write_bytes(bytes(range(256)) * 8)
    for name in ("config.ckpt", "random.ckpt"):
        for command in (["predict", str(tmp_path / name), str(ckpt), "--out", str(tmp_path / "o")],
                        ["export", str(tmp_path / name), "--format", "onnx"], ["serve", str(tmp_path / name)]):
            assert main(command) == 2
            err = capsys.readouterr().err
            assert f"{name}: not a checkpoint" in err and "weights_only" not in err and "Traceback" not in err


def test_a_full_disk_during_generation_names_the_path(tmp_path, monkeypatch, capsys):
    import errno

    from spd.data.synthetic import writer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer, "write_image", full)
    assert main(["data", "synth", str(tmp_path / "synth"), "--num", "2", "--size", "64", "--no-sheet"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and str(tmp_path / "synth") in err
    assert not list(tmp_path.glob(".synth.partial-*"))


def test_weights_files_honour_the_umask(tmp_path):
    from predict_helpers import write_checkpoint
    from spd.weights import load_checkpoint, write_weights_file

    ckpt = write_checkpoint(tmp_path / "m.ckpt")
    old = os.umask(0o027)
    try:
        assert main(["export", str(ckpt), "--format", "safetensors", "--out", str(tmp_path / "e.safetensors")]) == 0
        write_weights_file(load_checkpoint(ckpt).model, tmp_path / "w.safetensors", {"format": "x"})
    finally:
        os.umask(old)
    for name in ("e.safetensors", "w.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640, name


def test_what_a_killed_generation_left_is_removed_by_the_next(tmp_path, caplog):
    """Only this machine's leftovers of processes that have ended (and those of earlier versions,
    named without their writer): on file systems that lock within one machine only (Lustre's
    localflock), another node may be writing its folder right now; that one is kept and reported."""
    import socket
    import subprocess

    from spd.data.synthetic import SynthSpec, generate

    ended = subprocess.Popen(["true"])
    ended.wait()
    host = socket.gethostname()
    stale = tmp_path / f".synth.partial-{ended.pid}@{host}.abc123"
    elsewhere = tmp_path / f".synth.partial-{ended.pid}@not-{host}.x1"
    running = tmp_path / f".synth.partial-{os.getpid()}@{host}.y2"
    older = tmp_path / ".synth.partial-abc123xy"
    other_data = tmp_path / ".synth.partial-x.partial-1"  # a partial of the dataset "synth.partial-x"
    for folder in (stale, elsewhere, running, older, other_data):
        (folder / "TrainVal_images").mkdir(parents=True)
    generate(tmp_path / "synth", SynthSpec(num=2, size=64))
    assert not stale.exists() and not older.exists() and (tmp_path / "synth" / "synthetic.yaml").is_file()
    assert elsewhere.is_dir() and running.is_dir() and other_data.is_dir()
    assert [r.getMessage() for r in caplog.records] == [
        f"{elsewhere}: kept, a generation's folder from not-{host}; delete it if no generation runs there"]


def test_complete_synthetic_data_are_reused_without_writing(tmp_path):
    """Pre-generated data may lie on a read-only mount: reusing them writes nothing, not even the lock."""
    from spd.data.synthetic import SynthSpec, generate

    spec = SynthSpec(num=2, size=64)
    manifest = generate(tmp_path / "data" / "synth", spec)
    (tmp_path / "data" / ".synth.lock").unlink()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    os.chmod(tmp_path / "data", 0o555)
    try:
        assert generate(tmp_path / "data" / "synth", spec) == manifest
    finally:
        os.chmod(tmp_path / "data", 0o755)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_processes_asking_for_the_same_data_at_once_generate_it_once(tmp_path, monkeypatch):
    """The ranks of a distributed run (torchrun, SLURM) each call for the dataset: one generates,
    the others wait for it and reuse it. Two threads stand for two ranks (flock excludes two opens
    of the lock file in one process as it does in two); the first writes only once the second has
    asked for the lock."""
    import threading

    from spd.data.synthetic import SynthSpec, generate
    from spd.data.synthetic import writer

    real_write, real_lock, writes, asked = writer._write_dataset, writer.file_lock, [], threading.Event()

    def lock(path, wait=True):
        if threading.current_thread() is second:
            asked.set()
        return real_lock(path, wait)

    def write(out, *args):
        writes.append(out)
        if len(writes) == 1:
            assert asked.wait(60)
            time.sleep(0.3)  # the second rank is now at the lock (without one: writing too)
        real_write(out, *args)

    monkeypatch.setattr(writer, "_write_dataset", write)
    monkeypatch.setattr(writer, "file_lock", lock)
    spec, errors = SynthSpec(num=6, size=48), []

    def rank():
        try:
            generate(tmp_path / "synth", spec)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    first, second = threading.Thread(target=rank, daemon=True), threading.Thread(target=rank, daemon=True)
    first.start()
    while not writes and first.is_alive():
        time.sleep(0.01)
    second.start()
    first.join(120)
    second.join(120)
    assert not first.is_alive() and not second.is_alive()
    assert not errors and len(writes) == 1
    assert len(list((tmp_path / "synth").rglob("*.jpg"))) == 6 and not list(tmp_path.glob(".synth.partial-*"))


@pytest.mark.parametrize("held", [False, True], ids=["no flock", "lock within one machine"])
def test_processes_the_lock_does_not_exclude_keep_each_others_folders(tmp_path, monkeypatch, caplog, held):
    """On a file system without flock (some NFS / Lustre mounts) nothing serialises the ranks; with
    Lustre's localflock each node holds "the" lock. Here a second process starts and finishes while
    the first is still writing: it must not remove the first one's folder as stale, and the first
    must then reuse its data instead of failing at the rename."""
    import contextlib

    from spd.data.synthetic import SynthSpec, generate
    from spd.data.synthetic import writer
    from spd.ops.locks import FileLock

    @contextlib.contextmanager
    def lock(path, wait=True):
        with open(path, "a+", encoding="utf-8") as f:
            yield FileLock(f, held, None if held else "Function not implemented")

    monkeypatch.setattr(writer, "file_lock", lock)
    real_write, calls = writer._write_dataset, []

    def write(out, *args):
        calls.append(out)
        if len(calls) == 1:  # the other rank (on another machine) runs from start to finish meanwhile
            with monkeypatch.context() as m:
                m.setattr(writer.socket, "gethostname", lambda: "other-node")
                generate(tmp_path / "synth", spec)
            assert out.is_dir(), "the other rank removed this one's folder as stale"
        real_write(out, *args)

    monkeypatch.setattr(writer, "_write_dataset", write)
    spec = SynthSpec(num=6, size=48)
    with caplog.at_level("WARNING", logger="spd.data.synthetic.writer"):
        manifest = generate(tmp_path / "synth", spec)
    assert manifest == tmp_path / "synth" / writer.MANIFEST and manifest.is_file() and len(calls) == 2
    assert not list(tmp_path.glob(".synth.partial-*"))
    # Holding its node's lock, the other machine saw this one's folder, kept it and said so.
    assert any("kept, a generation's folder from" in m for m in caplog.messages) == held


def test_only_the_first_process_of_any_launcher_takes_the_run_lock(tmp_path, monkeypatch, caplog):
    """One srun task per GPU sets SLURM_PROCID only (LSF's jsrun JSM_NAMESPACE_RANK): the other
    tasks must not take (and fail on) the lock that rank 0 holds, while another training's rank 0
    is refused. A file system without flock gives a warning, not a crash."""
    from spd.ops import locks
    from spd.training import run_lock

    for variable in run_lock.RANK_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    assert run_lock.is_main_process()
    for variable in ("SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        monkeypatch.setenv(variable, "3")
        assert not run_lock.is_main_process(), variable
        monkeypatch.setenv(variable, "0")
    with run_lock.run_dir_lock(tmp_path / "a"):  # rank 0 holds it
        monkeypatch.setenv("SLURM_PROCID", "3")
        with run_lock.run_dir_lock(tmp_path / "a"):  # another rank: no lock, no RunInUse
            pass
        monkeypatch.setenv("SLURM_PROCID", "0")
        with pytest.raises(run_lock.RunInUse, match="in use by another spd train"):
            with run_lock.run_dir_lock(tmp_path / "a"):  # another training's rank 0
                pass

    def no_flock(*args):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(locks.fcntl, "flock", no_flock)
    with caplog.at_level("WARNING", logger="spd.training.run_lock"), run_lock.run_dir_lock(tmp_path / "b"):
        pass
    assert any("cannot lock the run folder" in m and "No locks available" in m for m in caplog.messages), caplog.messages


def test_unreadable_user_files_are_one_line_errors_naming_them(tmp_path, capsys):
    """Files the user points the commands at, read by code that raised the parsers' own exceptions
    (which the command line no longer prints as a user's error): each is an SPDError naming the file."""
    from spd.labels import load_mapping
    from spd.labels.relabel import load_relabel
    from spd.ops.errors import SPDError

    binary = tmp_path / "photo.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    assert main(["report", str(binary), "--out", str(tmp_path / "r")]) == 2
    assert f"{binary}: cannot read an evaluation JSON" in capsys.readouterr().err
    with pytest.raises(SPDError, match="photo.png: not a YAML text file"):
        load_relabel(binary)
    ragged = tmp_path / "ragged.yaml"
    ragged.write_text("source: lip\nclasses: [a, b]\nmap: {" + ", ".join(f"{c}: a" for c in _lip_classes()) + "}\n"
                      "palette: [[0, 0, 0], [1, 2]]\n")
    with pytest.raises(SPDError, match="palette must list one"):
        load_relabel(ragged)
    groups = tmp_path / "mapping.yaml"
    groups.write_text("shared: {name: mine}\n")
    with pytest.raises(SPDError, match="a mapping needs 'name' and 'groups'"):
        load_mapping("shared", groups)
    groups.write_text("shared: {name: mine, groups: [{name: g, lip: [one]}]}\n")
    with pytest.raises(SPDError, match="mapping.yaml:shared"):
        load_mapping("shared", groups)


def _lip_classes():
    from spd.labels import label_space

    return [f"'{c}'" for c in label_space("lip").classes]


def test_a_dict_valued_config_key_converts_its_values():
    config, _ = load_config(None, ["loss.weights={edge: 1e-3}"])
    assert config.loss.weights == {"edge": 0.001}
