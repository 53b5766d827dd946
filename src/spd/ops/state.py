"""Reading PyTorch files and checking state dicts, with one message style: every error names the
file and the first key at fault. Used for resuming, for model files, and for pretrained weights."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import InputError


class WeightsError(InputError):
    """A weights or checkpoint file that cannot be used; the message names the file (and key)."""


def read_torch_file(path: Path | str, what: str = "PyTorch file", mmap: bool = False) -> Any:
    """``torch.load`` of tensors and plain containers only (``weights_only``), on the CPU. A missing,
    empty, truncated or foreign file, or one holding other Python objects, is a WeightsError naming
    it (never a suggestion to unpickle an unknown file)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: {what} not found")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: the {what} is empty (0 bytes)")
    if not zipfile.is_zipfile(path) and not _legacy_torch_file(path):
        raise WeightsError(f"{path}: not a {what} (neither the zip archive torch.save writes nor its pre-1.6 "
                           "format: truncated, or another kind of file)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError:
        # A truncated file in the pre-1.6 format also ends in a refused pickle instruction.
        damaged = " (or it is truncated)" if not zipfile.is_zipfile(path) else ""
        raise WeightsError(f"{path}: not a {what}: it holds Python objects other than tensors and plain data, which "
                           f"are not loaded (loading them could run code){damaged}") from None
    except Exception as err:  # torch raises several types for a truncated or damaged archive
        raise WeightsError(f"{path}: cannot read the {what} ({type(err).__name__}; damaged or truncated?)") from None


# torch.save's format before PyTorch 1.6 (SCHP's published files, for one) starts with its magic
# number pickled at protocol 2.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."


def _legacy_torch_file(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(_LEGACY_MAGIC)) == _LEGACY_MAGIC


def unwrap_state_dict(obj: Any, source: Path | str) -> dict[str, torch.Tensor]:
    """The state dict inside common wrappers (``{"state_dict": ...}``, ``{"model": ...}``), keys without
    DataParallel's ``module.`` prefix."""
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{source}: expected a state dict (names -> tensors), found {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def check_state_dict(own: Mapping[str, torch.Tensor], theirs: Mapping[str, torch.Tensor], source: Path | str,
                     what: str = "this model") -> None:
    """Raises WeightsError unless ``theirs`` has exactly ``own``'s keys with the same shapes."""
    missing, unexpected = sorted(own.keys() - theirs.keys()), sorted(theirs.keys() - own.keys())
    wrong = sorted(k for k in own.keys() & theirs.keys() if tuple(own[k].shape) != tuple(theirs[k].shape))
    if missing or unexpected or wrong:
        first = (f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}" if unexpected
                 else shape_message(wrong[0], theirs[wrong[0]], own[wrong[0]]))
        raise WeightsError(f"{source}: the weights do not fit {what} ({len(missing)} missing, {len(unexpected)} "
                           f"unexpected, {len(wrong)} of another shape; first: {first})")


def shape_message(key: str, theirs: torch.Tensor, own: torch.Tensor) -> str:
    return f"{key!r} has shape {tuple(theirs.shape)} in the file, {tuple(own.shape)} in the model"


def check_finite(state: Mapping[str, torch.Tensor], source: Path | str) -> None:
    """Raises WeightsError naming the first parameter or buffer holding NaN or infinity: such a model
    predicts nonsense (one class everywhere) without any other sign."""
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise WeightsError(f"{source}: weight {key!r} holds {bad} NaN or infinite value(s) of {value.numel()}; "
                               "the model cannot be used (was training diverging when it was saved?)")
