"""Every preset computes the same function for the same weights as before the trunk / heads
restructuring: tests/fixtures/presets_v0.json.gz holds, for each preset, the model record and the
state-dict keys a model file of that version had, and the outputs (sums and samples) that the code
of that version computed with deterministic weights (tests/reference_weights.py). Here the same
weights, under the old keys, go through today's loader (the one upgrade function) and model."""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from reference_weights import reference_image, reference_state, summary
from spd.export import ExportWrapper
from spd.inference import EvalConfig
from spd.predict import Predictor
from spd.weights import load_checkpoint, model_from_record, upgrade

FIXTURE = json.loads(gzip.decompress((Path(__file__).parent / "fixtures" / "presets_v0.json.gz").read_bytes()))
TASKS = ("parsing", "pose", "dp_index", "dp_uv")


def _close(got: torch.Tensor, want: dict, what: str) -> None:
    now = summary(got)
    assert now["shape"] == want["shape"], what
    scale = max(1.0, want["abs_sum"] / max(1, got.numel()))
    assert now["abs_sum"] == pytest.approx(want["abs_sum"], rel=1e-4), what
    assert now["sum"] == pytest.approx(want["sum"], rel=1e-4, abs=1e-4 * want["abs_sum"]), what
    assert now["samples"] == pytest.approx(want["samples"], rel=1e-3, abs=1e-4 * scale), what


def _old_model(name: str):
    entry = FIXTURE["presets"][name]
    state = reference_state({k: (shape, dtype) for k, (shape, dtype) in entry["state"].items()})
    record, state = upgrade(entry["record"], state, f"fixture {name}")
    model = model_from_record(record, f"fixture {name}")
    model.load_state_dict(state)
    return model.eval(), entry


@pytest.mark.parametrize("name", sorted(FIXTURE["presets"]))
def test_preset_computes_what_it_computed_before(name):
    torch.manual_seed(0)
    model, entry = _old_model(name)
    image = reference_image(*FIXTURE["image"][:2])
    with torch.no_grad():
        out = model(model.normalise(image[None].float()))
    for i, (stage, want) in enumerate(zip(out.stages, entry["forward"], strict=True)):
        for task in TASKS:
            assert (getattr(stage, task) is None) == (task not in want), (name, i, task)
            if task in want:
                _close(getattr(stage, task), want[task], f"{name} stage {i} {task}")
    for scale, stages in entry["forward_scales"].items():
        for i, want in enumerate(stages):
            for task, value in want.items():
                _close(getattr(out.scales[float(scale)][i], task), value, f"{name} scale {scale} stage {i} {task}")


@pytest.mark.parametrize("name", sorted(n for n, e in FIXTURE["presets"].items() if "predictor" in e))
def test_predictor_and_export_give_what_they_gave_before(name):
    model, entry = _old_model(name)
    image = reference_image(*FIXTURE["image"][:2])
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in entry["predictor"]["settings"].items()}
    result = Predictor(model, EvalConfig(**settings), device="cpu", precision="32")(image).to_numpy()  # as recorded
    for key, want in entry["predictor"].items():
        if key != "settings":
            _close(torch.from_numpy(result[key]).float(), want, f"{name} predictor {key}")
    with torch.no_grad():
        exported = ExportWrapper(model, "all")(image[None])
    for got, want in zip(exported, entry["export"], strict=True):
        _close(got, want, f"{name} export")


def test_a_weights_file_written_before_loads_and_predicts_the_same(tmp_path):
    """A safetensors file in the earlier layout (flat config record, ``backbone.`` / ``decoder.`` keys)."""
    entry = FIXTURE["presets"]["cpu_spd"]
    state = reference_state({k: (shape, dtype) for k, (shape, dtype) in entry["state"].items()})
    settings = entry["predictor"]["settings"]
    path = tmp_path / "old.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path),
              metadata={"format": "spd-weights/1", "model": json.dumps(entry["record"]), "eval": json.dumps(settings)})
    loaded = load_checkpoint(path)
    assert asdict(loaded.protocol)["flip"] == settings["flip"]
    result = Predictor(loaded.model, loaded.protocol, device="cpu", precision="32")(reference_image(*FIXTURE["image"][:2])).to_numpy()
    _close(torch.from_numpy(result["parsing"]).float(), entry["predictor"]["parsing"], "old file parsing")
    assert sorted(loaded.model.state_dict()) == sorted(upgrade(entry["record"], state, "x")[1])
