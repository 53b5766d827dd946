"""The memory estimate counts what it says: live tensor bytes, checked by hand on a small layer,
and the same on fake tensors as on real ones for a whole training step."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # bench_memory imports bench_speed from beside it, as a script does
SPEC = importlib.util.spec_from_file_location("bench_memory", BENCHMARKS / "bench_memory.py")
bench_memory = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench_memory)
sys.path.remove(str(BENCHMARKS))

MiB = 2**20


@pytest.mark.parametrize("fake", [False, True])
def test_live_bytes_of_a_linear_layer_by_hand(fake):
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() if fake else torch.enable_grad():
        layer = torch.nn.Linear(1024, 1024, bias=False)  # 4 MiB of weight
        x = torch.randn(256, 1024)                      # 1 MiB
        tracker = bench_memory.LiveTensorBytes()
        tracker.track(layer.weight, x, x[:10])          # a view is not counted twice
        assert tracker.current == 5 * MiB
        with tracker:
            y = torch.relu(layer(x))                     # the product (freed after relu) and y: 1 MiB each
            assert tracker.current == 6 * MiB and tracker.peak == 7 * MiB
            y.sum().backward()                           # the weight's gradient: 4 MiB
            del y
            assert layer.weight.grad is not None and tracker.current == 9 * MiB
        layer.weight.grad = None
        assert tracker.current == 5 * MiB


def test_sizes_round_up_to_the_allocator_block():
    assert [bench_memory.rounded(n) for n in (1, 512, 513, 0)] == [512, 512, 1024, 0]


def test_fake_estimate_equals_the_real_step_on_cpu():
    """A training step of the CPU family, twice, with the loss, the optimiser and bf16 autocast:
    fake tensors must give the real tensors' peak within a few KiB (an op whose fake version
    allocates differently, or a tensor the tracker misses on one side, shows up here). The few KiB:
    the CPU kernel of batch norm in training mode returns its saved statistics in a larger
    buffer than its fake version for some layers (20 of them here, 1.5 KiB each)."""
    fake = bench_memory.step_memory("cpu_s", 2, 64, "bf16-mixed", device="fake")
    real = bench_memory.step_memory("cpu_s", 2, 64, "bf16-mixed", device="cpu")
    assert abs(fake["peak_bytes"] - real["peak_bytes"]) <= 64 * 1024 and fake["state_GiB"] == real["state_GiB"]
    more = bench_memory.step_memory("cpu_s", 4, 64, "bf16-mixed", device="fake")
    assert more["peak_bytes"] > fake["peak_bytes"] and more["state_GiB"] == fake["state_GiB"]
    # Parameters, gradients and momentum: three float32 copies of the trained weights, at least.
    from spd.model import SPDNet, preset

    trained = sum(p.numel() for p in SPDNet(preset("cpu_s")).parameters() if p.requires_grad)
    assert fake["state_GiB"] * 2**30 >= 3 * 4 * trained * 0.999
