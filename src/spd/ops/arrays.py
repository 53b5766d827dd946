"""Tensors to numpy arrays, wherever they are: code that hands values to a user, a file or a web
page must not assume its tensors are on the CPU."""

from __future__ import annotations

import numpy as np
import torch


def as_numpy(value: np.ndarray | torch.Tensor) -> np.ndarray:
    """A numpy array of ``value``: a tensor on any device is detached and copied to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)
