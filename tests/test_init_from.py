"""``model.init_from``: a model started from another model's weights file, parameters matched by
name; what starts fresh is reported; a parameter of another shape is an error naming it; a model
with more feeders than its source first computes exactly what the source computed."""

from __future__ import annotations

import pytest
import torch

from predict_helpers import TINY
from spd.config import load_config
from spd.export.formats import metadata
from spd.inference import EvalConfig
from spd.model import CAFFE_BGR, SPDNet, model_config
from spd.ops.state import WeightsError
from spd.weights import init_from_file, write_weights_file

SMALL = {"fpn": {"decoder_width": 16, "head_width": 16}}


def _file(tmp_path, preset: str, normalisation=None, **fields) -> tuple[SPDNet, object]:
    torch.manual_seed(1)
    model = SPDNet(model_config({"preset": preset, **SMALL, **fields}), *(normalisation and [normalisation] or []))
    for p in model.parameters():  # weights unlike any fresh initialisation
        p.data.add_(0.01 * torch.randn_like(p))
    path = write_weights_file(model, tmp_path / f"{preset}.safetensors", metadata(model, EvalConfig(), None, "safetensors"))
    return model.eval(), path


def test_the_same_design_loads_everything(tmp_path):
    source, path = _file(tmp_path, "cpu_spd")
    torch.manual_seed(2)
    target = SPDNet(source.config)
    report = init_from_file(target, path)
    assert not report.fresh and not report.unused and not report.widened
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(target.eval()(x).final.parsing, source(x).final.parsing)


def test_spd_from_sp_computes_what_sp_computed_and_reports_the_new_branch(tmp_path):
    """The SPD paper's recipe at small scale (JPPNet is the sp design): the DensePose branch starts
    fresh, the refinement's fusing convs take the new DensePose input at zero weight."""
    source, path = _file(tmp_path, "cpu_sp")
    target = SPDNet(model_config({"preset": "cpu_spd", **SMALL}))
    report = init_from_file(target, path)
    assert report.widened == ["refine.0.parsing.trunk.0.0.weight", "refine.0.pose.trunk.0.0.weight"]
    assert any(k.startswith("initial.densepose.") for k in report.fresh)
    assert "refine.0.parsing.remaps.2.0.weight" in report.fresh and not report.unused
    text = report.summary()
    assert "starting fresh" in text and "initial.densepose" in text and "refine.0.densepose" in text
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        ours, theirs = target.eval()(x).final, source(x).final
    assert torch.allclose(ours.parsing, theirs.parsing, atol=1e-5) and torch.allclose(ours.pose, theirs.pose, atol=1e-5)
    # ...and it learns to use the new input: the zero block gets a gradient.
    target.train()(x).final.parsing.sum().backward()
    assert target.refine[0]["parsing"].trunk[0][0].weight.grad[:, 16:24].abs().sum() > 0


def test_a_parameter_of_another_shape_is_an_error_naming_it(tmp_path):
    _, path = _file(tmp_path, "cpu_spd", fpn={"decoder_width": 16, "head_width": 32})
    with pytest.raises(WeightsError, match=r"cpu_spd.safetensors: cannot initialise from it: 'initial.parsing.feature"
                                           r".0.0.weight' has shape \(32, 16, 3, 3\) in the file, \(16, 16, 3, 3\)"):
        init_from_file(SPDNet(model_config({"preset": "cpu_spd", **SMALL})), path)


def test_training_starts_from_the_file_with_its_input_normalisation(tmp_path):
    from spd.training.module import SPDModule

    source, path = _file(tmp_path, "cpu_s", normalisation=CAFFE_BGR)
    _, resolved = load_config(None, [*TINY, "model.preset=cpu_s", f"model.init_from={path}"])
    module = SPDModule(resolved)
    assert module.model.normalisation == CAFFE_BGR
    assert torch.equal(module.model.initial["parsing"].out.weight, source.initial["parsing"].out.weight)
    assert not torch.equal(SPDModule(resolved, initialise=False).model.initial["parsing"].out.weight,
                           source.initial["parsing"].out.weight)


def test_training_starts_from_a_training_checkpoint_and_says_what_it_loaded(tmp_path, caplog):
    """A ``.ckpt`` of ``spd train`` serves as well as a weights file; the run logs (``spd train``
    prints) what was loaded and what starts fresh, here the DensePose branch of an SPD model
    started from an SP checkpoint."""
    from predict_helpers import write_checkpoint
    from spd.training.module import SPDModule
    from spd.weights import load_checkpoint

    source = load_checkpoint(write_checkpoint(tmp_path / "sp.ckpt", [*TINY, "model.preset=cpu_sp"], seed=3)).model
    _, resolved = load_config(None, [*TINY, f"model.init_from={tmp_path / 'sp.ckpt'}"])
    with caplog.at_level("INFO", logger="spd.training.module"):
        module = SPDModule(resolved)
    assert torch.equal(module.model.initial["parsing"].out.weight, source.initial["parsing"].out.weight)
    said = [r.getMessage() for r in caplog.records if r.name == "spd.training.module"]
    assert len(said) == 1 and said[0].startswith(f"initialised from {tmp_path / 'sp.ckpt'}: "), said
    assert "tensors loaded" in said[0] and "starting fresh" in said[0] and "initial.densepose" in said[0]


def test_a_backbone_of_the_other_layout_is_refused_not_loaded(tmp_path):
    """Both dilated layouts have the same names and shapes: without the check every tensor would load
    into a network that computes something else (JPPNet's caffe weights into torchvision's ResNet)."""
    fields = {"fpn": None, "dilated": {"depth": 18, "width": 0.125}, "train_scales": [1.0]}
    _, path = _file(tmp_path, "sp", **fields)
    target = SPDNet(model_config({"preset": "spd", **fields, "dilated": {**fields["dilated"], "layout": "torchvision"}}))
    with pytest.raises(WeightsError, match=r"sp.safetensors: its backbone has model.dilated.layout 'caffe', this "
                                           r"model 'torchvision': set model.dilated.layout=caffe"):
        init_from_file(target, path)
    same = SPDNet(model_config({"preset": "spd", **fields}))
    assert init_from_file(same, path).loaded

