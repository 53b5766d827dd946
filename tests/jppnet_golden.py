"""Shared by tests/test_jppnet_fidelity.py and tools/jppnet_tf_graph.py (which made the golden file
with TensorFlow): the random weights and input of the JPPNet golden-output check. numpy only."""

from __future__ import annotations

import numpy as np

SEED = 20261124
INPUT_HW = (50, 42)  # odd sizes at scales 0.75 and 0.5 (37x31, 25x21): SAME padding both ways


def draw_weights(variables: dict[str, tuple[int, ...]], seed: int = SEED) -> dict[str, np.ndarray]:
    """Official variable name -> float32 array, drawn in sorted name order. Convolution weights are
    He-scaled so that activations keep their size through 101 layers; batch-norm statistics and
    scales are positive and near 1, biases small."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(variables):
        shape = variables[name]
        leaf = name.rsplit("/", 1)[-1]
        if leaf in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf in ("weights", "w"):
            fan_in = int(np.prod(shape[:-1]))
            value = rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)
        else:  # beta, moving_mean, biases, b
            value = rng.standard_normal(shape) * 0.1
        out[name] = value.astype(np.float32)
    return out


def golden_input(seed: int = SEED) -> np.ndarray:
    """The network input (already normalised), NHWC [1, H, W, 3] float32."""
    return (np.random.default_rng(seed + 1).standard_normal((1, *INPUT_HW, 3)) * 50).astype(np.float32)
