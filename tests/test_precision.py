"""``--precision auto``: float32 on a CPU without native bf16 (no measurement), a measured and
remembered choice where bf16 is native. The masks bf16 gives are checked against float32's in
test_training.py (a trained model)."""

from __future__ import annotations

import json

import pytest

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


@pytest.mark.parametrize("bf16_seconds,expected", [(0.25, "bf16"), (0.95, "32")])
def test_native_bf16_is_measured_once_and_kept_only_where_it_pays(model, cache, monkeypatch, bf16_seconds, expected):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f", "amx_bf16", "amx_tile"})
    calls = []

    def timed(m, size, p, runs=2):
        calls.append((size, p))
        return {"32": 1.0, "bf16": bf16_seconds}[p]

    monkeypatch.setattr(precision, "forward_seconds", timed)
    first = resolve_precision("auto", model, (64, 48))
    assert first.precision == expected and first.seconds == {"32": 1.0, "bf16": bf16_seconds}
    assert calls == [((64, 48), "32"), ((64, 48), "bf16")] and "amx_bf16" in first.reason
    assert list(json.loads(cache.read_text()).values())[0]["precision"] == expected
    monkeypatch.setattr(precision, "forward_seconds", _no_measuring)
    again = resolve_precision("auto", model, (64, 48))
    assert again.precision == expected and "measured on this machine before" in again.reason
    # Another input size (or model) is another question.
    monkeypatch.setattr(precision, "forward_seconds", timed)
    resolve_precision("auto", model, (96, 64))
    assert calls[-1] == ((96, 64), "bf16")


def test_the_predictor_defaults_to_auto(model, cache, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: set())
    predictor = Predictor(model, EvalConfig(input_size=(64, 48)), device="cpu")
    assert predictor.precision == "32" and predictor.precision_choice.reason.startswith("this CPU has no native")


def test_measuring_times_a_real_forward(model):
    seconds = precision.forward_seconds(model, (32, 32), "32", runs=1)
    assert 0 < seconds < 60
