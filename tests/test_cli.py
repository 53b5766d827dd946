import subprocess
import sys

import pytest
from PIL import Image

from spd.cli.main import main


def test_synth_writes_data_manifest_and_contact_sheet(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["data", "synth", str(out), "--num", "6", "--size", "64", "--domain", "B", "--format", "lip"]) == 0
    assert (out / "synthetic.yaml").is_file()
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.height > 100 and sheet.width > 4 * 40
    assert len(list((out / "densepose").glob("*.png"))) == 6
    assert main(["data", "summary", str(out), "--split", "val"]) == 0
    text = capsys.readouterr().out
    assert "LIP official archive" in text and "class pixel share (lip)" in text and "keypoints:" in text


def test_split_atr_and_sheet_commands(fixtures, tmp_path, capsys):
    assert main(["data", "split-atr", str(fixtures / "atr"), "--out", str(tmp_path / "splits"), "--val", "1",
                 "--test", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "splits").iterdir()) == ["test.txt", "train.txt", "val.txt"]
    assert "train: 3 ids" in capsys.readouterr().out
    assert main(["data", "sheet", str(fixtures / "lip_official"), "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").height > 0


def test_bad_arguments_give_a_clear_error(tmp_path, capsys):
    assert main(["data", "synth", str(tmp_path), "--num", "0"]) == 2
    assert "argument --num: must be within 1..10000000, got 0" in capsys.readouterr().err
    assert main(["data", "summary", str(tmp_path / "nowhere")]) == 2


def test_demo_runs_as_a_module(tmp_path):
    # The whole main job at toy size: generate, train one epoch, evaluate (also across domains), report.
    # 32-true: the subprocess would time train.precision auto on a CPU with native bf16 (the
    # conftest's patch does not reach it); auto is tested in test_training.py.
    sets = ["data.synthetic={domain: A, num: 16, size: 64, seed: 0, val_fraction: 0.25}", "train.max_epochs=1",
            "train.precision=32-true",
            "augment.size=[64, 64]", "eval.input_size=[64, 48]", "data.num_workers=0"]
    command = [sys.executable, "-m", "spd", "demo", "--out", str(tmp_path), "--device", "cpu", "--cross-domain", "4"]
    for item in sets:
        command += ["--set", item]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = tmp_path / "report"
    assert "| variant | data | runs | pixel acc | mean acc | mIoU | PCKh | DP part mIoU | DP UV error |" in (report / "README.md").read_text()
    assert (report / "predictions.png").is_file() and (report / "domain_A" / "metrics.json").is_file()
    assert (report / "domain_B_shared" / "metrics.json").is_file()
    assert (tmp_path / "train" / "checkpoints" / "last.ckpt").is_file()


def test_evaluate_rejects_files_that_are_not_checkpoints(tmp_path, fixtures, capsys):
    import torch

    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
    for name, message in (("foreign.pt", "not a checkpoint of `spd train`"), ("garbage.ckpt", "not a checkpoint (neither the zip"),
                          ("none.ckpt", "model file not found")):
        assert main(["evaluate", str(tmp_path / name), "--data", str(fixtures / "lip_official"), "--split", "train"]) == 2
        err = capsys.readouterr().err
        assert name in err and message in err


def test_model_summary_names_each_familys_trunk(capsys):
    assert main(["model", "summary", "cpu_spd"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "resnet18 + top-down decoder (64 ch)" in first and "p2 (64 ch, stride 4)" in first
    assert main(["model", "summary", "jppnet"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "dilated ResNet-101 (caffe layout)" in first and "res5 (2048 ch, stride 8)" in first


def test_a_closed_output_pipe_ends_quietly():
    """`spd model summary s | head -1`: the reader leaving early is no traceback."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "spd", "model", "summary", "cpu_s"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # before anything is written: every write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_lightning_messages_print_once_without_its_advert():
    import subprocess
    import sys

    code = ("import logging; from spd.cli.main import setup_logging; setup_logging(False); import lightning.pytorch; "
            "logging.getLogger('lightning.pytorch.trainer').info('GPU available: probe'); "
            "from lightning.pytorch.utilities.rank_zero import rank_zero_info; "
            "rank_zero_info('\N{ELECTRIC LIGHT BULB} Tip: try our cloud service'); rank_zero_info('Epoch probe')")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stderr
    assert err.count("GPU available: probe") == 1 and err.count("Epoch probe") == 1, err
    assert "cloud service" not in err, err  # Lightning's advert at every fit is not about the user's run


def test_a_users_mistake_is_one_line_and_a_bug_shows_its_traceback(monkeypatch, capsys):
    """SPDError (and OSError) are what the user got wrong: the message alone, exit status 2. Any
    other exception is a fault of the program and must not be dressed up as the user's."""
    import spd.cli.model as model_cli
    from spd.ops.errors import InputError

    def wrong_value(args):
        raise InputError("model.thing must be one of a, b, got 'c'")

    monkeypatch.setattr(model_cli, "cmd_summary", wrong_value)
    assert main(["model", "summary", "cpu_s"]) == 2
    assert capsys.readouterr().err.strip() == "spd: error: model.thing must be one of a, b, got 'c'"

    def bug(args):
        return {}["missing"]

    monkeypatch.setattr(model_cli, "cmd_summary", bug)
    with pytest.raises(KeyError, match="missing"):
        main(["model", "summary", "cpu_s"])
    # An unknown name is the user's mistake, though a KeyError to code that catches those.
    from spd.model import preset
    from spd.ops.errors import SPDError

    with pytest.raises(SPDError, match="unknown model preset 'nope'") as err:
        preset("nope")
    assert isinstance(err.value, KeyError) and str(err.value).startswith("unknown")
