"""``spd export``: ONNX (checked with onnxruntime), TorchScript and safetensors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from predict_helpers import TINY, write_checkpoint
from spd import Predictor
from spd.cli.main import main
from spd.export import export_model, run_exported
from spd.export.wrapper import ExportWrapper
from spd.predict import load_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.ckpt")


def test_onnx_matches_pytorch_with_dynamic_batch_and_size(tmp_path, checkpoint, capsys):
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(printed.strip().splitlines()[-1])
    assert "max abs difference from PyTorch" in printed and report["max_abs_diff"] < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["opset"] == "18" and "uint8 [B, 3, H, W], RGB" in meta["input"]
    assert json.loads(meta["model"])["normalisation"]["channel_order"] == "RGB"
    # A batch size and an image size the export did not see.
    wrapper = ExportWrapper(load_checkpoint(checkpoint).model)
    image = torch.randint(0, 256, (3, 3, 72, 40), dtype=torch.uint8)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": image.numpy()})
    with torch.no_grad():
        want = wrapper(image)
    assert [o.name for o in session.get_outputs()] == ["parsing", "pose", "dp_index", "dp_uv"]
    for a, b in zip(got, want):
        assert a.shape == tuple(b.shape) and np.abs(a - b.numpy()).max() < 1e-4


def test_safetensors_weights_load_in_the_predictor(tmp_path, checkpoint):
    loaded = load_checkpoint(checkpoint)
    report = export_model(loaded.model, loaded.protocol, "safetensors", tmp_path / "m.safetensors", loaded.experiment)
    assert report["max_abs_diff"] == 0.0
    image = np.random.default_rng(0).integers(0, 256, (50, 35, 3), dtype=np.uint8)
    a = Predictor.from_checkpoint(checkpoint, device="cpu")(image)
    b = Predictor.from_checkpoint(tmp_path / "m.safetensors", device="cpu")(image)
    assert b.protocol == a.protocol and torch.equal(a.parsing, b.parsing) and torch.equal(a.keypoints, b.keypoints)
    # A safetensors file that SPD did not write is refused by name.
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not an SPD weights file"):
        load_checkpoint(tmp_path / "other.safetensors")


def test_torchscript_and_a_parsing_only_model(tmp_path):
    ckpt = write_checkpoint(tmp_path / "s.ckpt", [*TINY, "model.preset=cpu_s"])
    loaded = load_checkpoint(ckpt)
    report = export_model(loaded.model, loaded.protocol, "torchscript", tmp_path / "s.pt")
    assert report["outputs"] == ["parsing"] and report["max_abs_diff"] < 1e-5
    extra = {"spd/input": ""}
    module = torch.jit.load(str(tmp_path / "s.pt"), _extra_files=extra)
    assert b"uint8" in extra["spd/input"]
    (out,) = module(torch.zeros(1, 3, 64, 48, dtype=torch.uint8))
    assert out.shape == (1, 20, 16, 12)
    assert run_exported(tmp_path / "s.pt", "torchscript", torch.zeros(1, 3, 64, 48, dtype=torch.uint8))[0].shape == out.shape


def test_export_refuses_to_overwrite(tmp_path, checkpoint, capsys):
    (tmp_path / "m.safetensors").write_bytes(b"keep me")
    assert main(["export", str(checkpoint), "--format", "safetensors", "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "exists; use --overwrite" in capsys.readouterr().err
    assert (tmp_path / "m.safetensors").read_bytes() == b"keep me"


def test_an_input_too_large_to_check_is_refused_before_anything_is_written(tmp_path, checkpoint, capsys):
    """4000 x 4000 was accepted, written under its final name, then its check grew past 16 GB."""
    out = tmp_path / "m.onnx"
    assert main(["export", str(checkpoint), "--format", "onnx", "--input-size", "4000", "4000", "--out", str(out)]) == 2
    assert "--input-size 4000 4000: 16.0 megapixels" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_failed_check_or_a_full_disk_leaves_nothing(tmp_path, checkpoint, capsys, monkeypatch):
    """The file keeps a temporary name until its check has passed; safetensors' own error for a full
    disk becomes one that names the file."""
    import spd.export.formats as formats
    from safetensors import SafetensorError

    def broken_check(*args):
        raise RuntimeError("the check failed")

    monkeypatch.setattr(formats, "run_exported", broken_check)
    with pytest.raises(RuntimeError, match="the check failed"):
        export_model(load_checkpoint(checkpoint).model, load_checkpoint(checkpoint).protocol, "safetensors", tmp_path / "a.safetensors")
    monkeypatch.undo()

    def full_disk(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space '
                              'left on device" })')

    monkeypatch.setattr("safetensors.torch.save_file", full_disk)
    out = tmp_path / "b.safetensors"
    assert main(["export", str(checkpoint), "--format", "safetensors", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"writing {out}: " in err and "the weights file could not be written" in err and "No space left" in err
    assert not list(tmp_path.iterdir())


def test_onnx_int8_is_calibrated_on_photos_and_compared_with_float32(tmp_path, checkpoint, capsys):
    pytest.importorskip("onnxruntime")
    import onnx
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):  # smooth photos of different sizes (the graph's input is resized to 64 x 48)
        small = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
        Image.fromarray(small).resize((40 + 10 * i, 70 - 5 * i), Image.Resampling.BILINEAR).save(photos / f"p{i}.png")
    out = tmp_path / "m.onnx"
    # Refused before anything is written: no photos to calibrate on, or another format.
    (tmp_path / "empty").mkdir()
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(out), "--int8", "--calibrate",
                 str(tmp_path / "empty")]) == 2
    assert "--calibrate" in capsys.readouterr().err and not out.exists()
    assert main(["export", str(checkpoint), "--format", "torchscript", "--out", str(tmp_path / "m.pt"), "--int8",
                 "--calibrate", str(photos)]) == 2
    assert "--int8 quantises the ONNX file" in capsys.readouterr().err
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(out), "--int8", "--calibrate",
                 str(photos)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    q = report["int8"]
    assert q["path"] == str(tmp_path / "m.int8.onnx") and q["calibration_photos"] == 4
    assert 0.5 < q["parsing_agreement"] <= 1.0  # measured, not assumed: random weights keep most classes
    assert q["latency_s"]["int8"] > 0 and q["latency_s"]["float32"] > 0
    model = onnx.load_model(q["path"])
    ops = {node.op_type for node in model.graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    props = {p.key: p.value for p in model.metadata_props}
    assert props["quantization"].startswith("static int8") and "classes" in props
