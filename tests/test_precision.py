"""``--precision auto``: float32 on a CPU without native bf16 (no measurement), a measured and
remembered choice where bf16 is native. The masks bf16 gives are checked against float32's in
test_training.py (a trained model)."""

from __future__ import annotations

import json

import pytest
import torch

import spd.inference.precision as precision
from spd.inference import EvalConfig, resolve_precision
from spd.model import SPDNet, preset
from spd.predict import Predictor


@pytest.fixture
def model():
    return SPDNet(preset("cpu_s")).eval()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPD_CACHE_DIR", str(tmp_path))
    return tmp_path / "precision.json"


def _no_measuring(*args, **kwargs):
    raise AssertionError("measured although the answer was known")


def test_a_cpu_without_native_bf16_stays_in_float32_without_measuring(model, cache, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f"})
    monkeypatch.setattr(precision, "forward_seconds", _no_measuring)
    choice = resolve_precision("auto", model, (64, 48))
    assert choice.precision == "32" and "no native bf16" in str(choice) and not cache.exists()
    assert resolve_precision("bf16", model, (64, 48)).precision == "bf16"  # asked for: as asked
    with pytest.raises(ValueError, match="precision must be one of auto, 32, bf16"):
        resolve_precision("16", model, (64, 48))


@pytest.mark.parametrize("seconds,expected", [
    ({"32": 1.0, "32+channels_last": 0.9, "bf16": 0.5, "bf16+channels_last": 0.25}, ("bf16", True)),
    ({"32": 1.0, "32+channels_last": 0.7, "bf16": 0.9, "bf16+channels_last": 1.1}, ("32", True)),
    ({"32": 1.0, "32+channels_last": 0.95, "bf16": 0.9, "bf16+channels_last": 0.85}, ("32", False)),  # < 1.2x
])
def test_native_bf16_is_measured_once_and_kept_only_where_it_pays(model, cache, monkeypatch, seconds, expected):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f", "amx_bf16", "amx_tile"})
    calls = []

    def timed(m, size, p, runs=2, channels_last=False):
        calls.append((size, precision.mode_name(p, channels_last)))
        return seconds[precision.mode_name(p, channels_last)]

    monkeypatch.setattr(precision, "forward_seconds", timed)
    first = resolve_precision("auto", model, (64, 48))
    assert (first.precision, first.channels_last) == expected and first.seconds == seconds
    assert [c for _, c in calls] == list(seconds) and "amx_bf16" in first.reason
    assert list(json.loads(cache.read_text()).values())[0]["precision"] == expected[0]
    monkeypatch.setattr(precision, "forward_seconds", _no_measuring)
    again = resolve_precision("auto", model, (64, 48))
    assert (again.precision, again.channels_last) == expected and "measured on this machine before" in again.reason
    # Another input size (or model) is another question.
    monkeypatch.setattr(precision, "forward_seconds", timed)
    resolve_precision("auto", model, (96, 64))
    assert calls[-1] == ((96, 64), "bf16+channels_last")


def test_the_choice_turns_the_weights_channels_last_only_when_chosen(model):
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    precision.PrecisionChoice("32", "as asked").apply(model)
    assert conv.weight.is_contiguous()
    precision.PrecisionChoice("bf16", "measured", channels_last=True).apply(model)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    assert "bfloat16 autocast, channels-last" in str(precision.PrecisionChoice("bf16", "measured", channels_last=True))


def test_channels_last_changes_only_rounding(model):
    x = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        before = model.predict_stages(x)[-1].parsing
        precision.PrecisionChoice("32", "measured", channels_last=True).apply(model)
        after = model.predict_stages(x)[-1].parsing
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)


def test_the_predictor_defaults_to_auto(model, cache, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: set())
    predictor = Predictor(model, EvalConfig(input_size=(64, 48)), device="cpu")
    assert predictor.precision == "32" and predictor.precision_choice.reason.startswith("this CPU has no native")


def test_measuring_times_a_real_forward_and_leaves_the_layout_as_it_was(model):
    seconds = precision.forward_seconds(model, (32, 32), "32", runs=1, channels_last=True)
    assert 0 < seconds < 60
    assert all(p.is_contiguous() for p in model.parameters())
