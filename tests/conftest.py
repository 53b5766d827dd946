import os
import tempfile
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle OpenMP threads sleep (see spd/cli/__init__.py)
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# --precision auto remembers its measurements: never in the user's cache (one folder per process).
os.environ.setdefault("SPD_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"spd_test_cache_{os.getpid()}"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several test processes (scripts/run.sh test: one per core): each computes on its share of the
    # cores, so that they do not oversubscribe them. Subprocesses the tests start use the default.
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, usable // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _auto_precision_is_float32(monkeypatch):
    """--precision auto (the default) decides from this CPU's flags and a timing: on a machine with
    native bf16 a small network's two timings are close enough to fall either way from run to
    run, and tests that compare exact outputs would then pass or fail by chance. So in the tests
    auto sees a CPU without native bf16 (float32, no timing); tests/test_precision.py gives it
    the flags it checks, and the bf16 tests ask for bf16."""
    import spd.inference.precision as precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: set())


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def synth_lip(tmp_path_factory) -> Path:
    """A small generated dataset in the LIP official layout (domain A) with its IUV folder."""
    from spd.data.synthetic import SynthSpec, generate

    root = tmp_path_factory.mktemp("synth_lip")
    generate(root, SynthSpec(num=16, domain="A", seed=3, size=96, val_fraction=0.25))
    return root


@pytest.fixture(scope="session")
def synth_atr(tmp_path_factory) -> Path:
    """A small generated dataset in the ATR layout (domain B)."""
    from spd.data.synthetic import SynthSpec, generate

    root = tmp_path_factory.mktemp("synth_atr")
    generate(root, SynthSpec(num=20, domain="B", seed=5, size=96, val_fraction=0.2))
    return root
