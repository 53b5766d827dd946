"""SCHP's network, its weights and its test protocol, against SCHP's own code: the golden file and
label maps in fixtures/schp were made by tools/schp_reference.py from random weights
(schp_golden.py) drawn again here, half of InPlaceABN's scales negative."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from schp_golden import FIXTURES, INPUT_HW, SEED, draw_weights, golden_input, photo_paths
from spd.cli.main import main as spd_main
from spd.convert.schp import _theirs, convert_checkpoint, convert_state, schp_protocol
from spd.data.image_io import read_image, read_label
from spd.inference import predict_batch
from spd.model import SPDNet, preset
from spd.model.activated_norm import ActivatedNorm2d
from spd.ops.state import WeightsError

CLASSES = {"lip": 20, "atr": 18, "pascal": 7}


def schp_state(dataset: str) -> dict[str, torch.Tensor]:
    """The reference's weights, in SCHP's names (without ``module.``)."""
    shapes = {_theirs(k): tuple(v.shape) for k, v in SPDNet(preset(f"schp_{dataset}")).state_dict().items()}
    return {k: torch.from_numpy(v) for k, v in draw_weights(shapes, SEED + CLASSES[dataset]).items()}


@pytest.fixture(scope="module")
def golden():
    with np.load(FIXTURES / "golden.npz") as f:
        return dict(f)


@pytest.fixture(scope="module", params=list(CLASSES))
def converted(request):
    return request.param, convert_state(schp_state(request.param), "reference weights")


def test_inplace_abn_scales_by_the_absolute_weight():
    norm = ActivatedNorm2d(4, "none").eval()
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.5, -1.5, 0.5, -0.0]))
        norm.bias.copy_(torch.tensor([0.1, 0.2, -0.3, 0.4]))
        norm.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        norm.running_var.copy_(torch.tensor([2.0, 0.5, 1.0, 3.0]))
    x = torch.randn(2, 4, 5, 3, dtype=torch.float64).float()
    mean, var = norm.running_mean.view(1, 4, 1, 1), norm.running_var.view(1, 4, 1, 1)
    expected = (x - mean) * torch.rsqrt(var + 1e-5) * (norm.weight.abs() + 1e-5).view(1, 4, 1, 1) + norm.bias.view(1, 4, 1, 1)
    torch.testing.assert_close(norm(x), expected, rtol=1e-6, atol=1e-6)
    plain = F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, 1e-5)
    differs = (norm(x) - plain).abs().amax(dim=(0, 2, 3)) > 1e-3
    assert differs.tolist() == [False, True, False, False]  # a negative scale only
    leaky = ActivatedNorm2d(4).eval()
    torch.testing.assert_close(leaky(x), F.leaky_relu(ActivatedNorm2d(4, "none").eval()(x), 0.01))


def _relative(ours: torch.Tensor, theirs: np.ndarray) -> float:
    theirs = torch.from_numpy(theirs)
    return float((ours - theirs).abs().max() / theirs.abs().max())


def test_the_network_computes_schps_outputs(converted, golden):
    dataset, model = converted
    with torch.no_grad():
        for i in range(len(INPUT_HW)):
            x = torch.from_numpy(golden_input(i))
            stages = model.predict_stages(x)
            edge = model.trunk(x)["edge"]
            for name, ours in (("parsing", stages[0].parsing), ("fusion", stages[1].parsing), ("edge", edge)):
                reference = golden[f"{dataset}/{i}/{name}"]
                assert ours.shape == reference.shape
                assert _relative(ours, reference) < 1e-5, (dataset, i, name, _relative(ours, reference))


def test_spd_predict_gives_simple_extractors_label_maps(converted):
    dataset, model = converted
    images = [read_image(p) for p in photo_paths()]
    predictions = predict_batch(model, images, schp_protocol(dataset))
    for path, prediction in zip(photo_paths(), predictions):
        reference = torch.from_numpy(read_label(FIXTURES / f"{dataset}_{path.name}").numpy())
        assert prediction.parsing.shape == reference.shape
        agreement = float((prediction.parsing == reference).float().mean())
        assert agreement >= 0.999, (dataset, path.name, agreement)
        assert len(reference.unique()) >= 4  # a label map with structure, not one class


def _save_schp(state: dict[str, torch.Tensor], path, legacy: bool) -> None:
    checkpoint = {"epoch": 150, "state_dict": {f"module.{k}": v for k, v in state.items()}}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)


def test_convert_predict_and_the_recorded_protocol(tmp_path, capsys):
    """spd convert schp on a checkpoint in PyTorch's pre-1.6 format (as SCHP published), then spd
    predict: the label maps of the reference."""
    state = schp_state("pascal")
    _save_schp(state, tmp_path / "schp-pascal.pth", legacy=True)
    assert not zipfile.is_zipfile(tmp_path / "schp-pascal.pth")
    out = tmp_path / "pascal.safetensors"
    assert spd_main(["convert", "schp", str(tmp_path / "schp-pascal.pth"), "--out", str(out)]) == 0
    assert "schp_pascal preset, 7 classes" in capsys.readouterr().out
    del state
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in photo_paths():
        (photos / p.name).write_bytes(p.read_bytes())
    assert spd_main(["predict", str(out), str(photos), "--out", str(tmp_path / "pred"), "--device", "cpu",
                     "--precision", "32"]) == 0  # SCHP computes in float32
    for p in photo_paths():
        ours = read_label(tmp_path / "pred" / f"{p.stem}_parsing.png")
        reference = read_label(FIXTURES / f"pascal_{p.name}")
        assert float((ours == reference).float().mean()) >= 0.999


def test_wrong_files_are_refused_naming_what_is_wrong(tmp_path, capsys):
    state = schp_state("atr")
    with pytest.raises(WeightsError, match=r"18 classes, not the 20 of --dataset lip \(it fits --dataset atr\)"):
        convert_state(state, "atr.pth", "lip")
    partial = {k: v for k, v in state.items() if not k.startswith("edge.")}
    with pytest.raises(WeightsError, match=r"atr.pth: not SCHP's ResNet-101 atr network: 19 missing \(edge.conv1.0.weight"):
        convert_state(partial, "atr.pth")
    extra = {**state, "aux.weight": torch.zeros(3)}
    with pytest.raises(WeightsError, match=r"1 unknown \(aux.weight\)"):
        convert_state(extra, "atr.pth")
    wrong = {**state, "layer1.0.conv1.weight": torch.zeros(64, 128, 3, 3)}
    with pytest.raises(WeightsError, match=r"'layer1.0.conv1.weight' has shape \(64, 128, 3, 3\) in the file"):
        convert_state(wrong, "atr.pth")
    del state, partial, extra, wrong
    # Not an SCHP file at all: an SPD (safetensors) file, a Lightning-style dict, a truncated file.
    (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(WeightsError, match="model.safetensors: not a SCHP checkpoint"):
        convert_checkpoint(tmp_path / "model.safetensors")
    torch.save({"state_dict": {"model.trunk.encoder.conv1.weight": torch.zeros(2)}}, tmp_path / "other.ckpt")
    with pytest.raises(WeightsError, match=r"other.ckpt: not an SCHP checkpoint: no 'decoder.conv4.weight'"):
        convert_checkpoint(tmp_path / "other.ckpt")
    buffer = io.BytesIO()
    torch.save({"state_dict": {"decoder.conv4.weight": torch.zeros(7, 256, 1, 1)}}, buffer)
    (tmp_path / "cut.pth").write_bytes(buffer.getvalue()[:200])
    with pytest.raises(WeightsError, match="cut.pth"):
        convert_checkpoint(tmp_path / "cut.pth")
    # On the command line: exit status 2, the file named, nothing written.
    assert spd_main(["convert", "schp", str(tmp_path / "cut.pth"), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "cut.pth" in capsys.readouterr().err and not (tmp_path / "x.safetensors").exists()
    assert spd_main(["convert", "schp", str(tmp_path / "cut.pth"), "--dataset", "coco", "--out", "x"]) == 2


def test_training_the_schp_family_is_refused_with_the_reason(tmp_path):
    from spd.config import load_config
    from spd.ops.errors import SPDError

    (tmp_path / "schp.yaml").write_text("model: {preset: schp_lip}\n")
    with pytest.raises(SPDError, match="spd does not train it"):
        load_config(tmp_path / "schp.yaml", [])


def test_a_one_pixel_wide_photo_is_placed_as_schp_places_it():
    from spd.inference.placement import affine_placement

    # SCHP widens the box [0, 0, 0, 1] to the canvas's aspect ratio: 0.5 wide, 1 high on a 64 x 32
    # canvas, so the factor is 31 / 0.5 = 62.
    assert affine_placement(2, 1, (64, 32)).factor == 62.0
    assert affine_placement(1, 1, (64, 32)).factor == 31.0  # no extent: any factor; SCHP divides by zero


def test_model_summary_describes_the_schp_family(capsys):
    assert spd_main(["model", "summary", "schp_pascal"]) == 0
    out = capsys.readouterr().out
    assert "SCHP's deep-stem ResNet-101" in out and "edge_feature (768 ch, stride 4)" in out
