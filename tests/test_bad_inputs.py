"""Bad inputs get a clear error naming the key, file or line at fault, before any work starts: one
table per kind of input."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

from spd.cli.main import main
from spd.config import ConfigError, load_config
from spd.data.errors import DataError
from spd.data.pose_csv import read_pose_csv
from spd.engine.train import check_resumable, check_split_sizes

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
    ("loss.uv_at=full", r"loss.uv_at must be one of"),
    ("loss.class_balance=2", r"loss.class_balance must be in \[0, 1\], got 2"),
    ("model.refine_fuse=5", r"refine_fuse 1 or 3, got 2, 5"),
    ("model.layout=keras", r"model layout must be one of"),
    ("model.preset=resnet", r"unknown model preset 'resnet'"),
    ("model.head_init=zeros", r"head_init must be 'jppnet' or 'kaiming'"),
    ("model.scales=[0.5, 1.0]", r"scales must start with 1.0"),
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
    (8, 0, 4, r"data/x: split 'val' has no images to validate on"),
])
def test_splits_too_small_to_train_on_are_refused(train, val, batch, message):
    with pytest.raises(DataError, match=message):
        check_split_sizes(_Split(train, "train"), _Split(val, "val"), batch)
    check_split_sizes(_Split(batch, "train"), _Split(1, "val"), batch)  # one batch is enough


# --- resuming --------------------------------------------------------------------------------

class _Model(torch.nn.Module):
    def __init__(self, width: int = 3):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, width, 1)


def _resume_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.ckpt"
    good = {"state_dict": _Model().state_dict(), "loops": {}, "optimizer_states": [], "global_step": 17}
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(bytes(range(256)) * 20)
    elif kind == "truncated":
        torch.save(good, path)
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "bare":
        torch.save(_Model().state_dict(), path)
    elif kind == "other":
        torch.save(dict(good, state_dict=_Model(5).state_dict()), path)
    else:
        torch.save(good, path)
    return path


@pytest.mark.parametrize("kind, message", [
    ("empty", r"empty.ckpt: the checkpoint is empty"),
    ("random", r"random.ckpt: not a PyTorch checkpoint \(no zip archive"),
    ("truncated", r"truncated.ckpt: not a PyTorch checkpoint"),
    ("bare", r"bare.ckpt: not a checkpoint of `spd train` \(a bare state dict"),
    ("other", r"other.ckpt: written by another model than this config builds .*'conv.bias' has shape \(5,\), this model \(3,\)"),
])
def test_resume_refuses_what_it_cannot_continue_naming_the_file(tmp_path, kind, message):
    with pytest.raises(ValueError, match=message):
        check_resumable(str(_resume_file(tmp_path, kind)), _Model())


def test_resume_accepts_its_own_checkpoint(tmp_path):
    path = _resume_file(tmp_path, "good")
    assert zipfile.is_zipfile(path)
    assert check_resumable(str(path), _Model()) == 17
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        check_resumable(str(tmp_path / "absent.ckpt"), _Model())


# --- run folders: one train at a time, nothing a killed run leaves behind blocks the next ------

def test_a_run_folder_in_use_is_refused_and_freed_when_its_holder_dies(tmp_path):
    import subprocess
    import sys

    from spd.engine.run_lock import RunInUse, run_dir_lock

    run = tmp_path / "run"
    with run_dir_lock(run):
        with pytest.raises(RunInUse, match=r"run is in use by another spd train \(pid \d+"):
            with run_dir_lock(run):
                pass
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from spd.engine.run_lock import run_dir_lock\n"
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
    from spd.engine.checkpoint_io import AtomicCheckpointIO, checkpoints_in, clean_checkpoint_folder
    from spd.engine.train import claim_run_dir

    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    leftovers = [folder / ".last.k3j2.partial", folder / ".epoch000-step000010.x9.tmp.ckpt"]
    for p in leftovers:
        p.write_bytes(b"half")
    claim_run_dir(tmp_path / "run", resume=False, overwrite=False)  # temporaries are no earlier run
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
