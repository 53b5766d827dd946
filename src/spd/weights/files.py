"""Reading and writing SPD model files.

* a training checkpoint (``*.ckpt``, Lightning's format): the model record under ``spd``, the
  weights under ``state_dict`` with the prefix ``model.``, the training config under
  ``hyper_parameters``, the optimiser's state and progress;
* a weights file (``*.safetensors``): the weights, and the record, the test-time settings and (when
  known) the training config as string metadata.

Either gives a :class:`ModelFile` (record and weights in today's layout, see :func:`.record.upgrade`);
:func:`load_checkpoint` builds the network from it, checked key by key, shape by shape, and value by
value (no NaN or infinity).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..inference.settings import EvalConfig
from ..model import SPDNet
from ..ops.atomic import atomic_path
from ..ops.renamed import renamed
from ..ops.state import WeightsError, check_finite, check_state_dict, read_torch_file
from ..ops.typed import ConfigError, build
from .record import model_from_record, upgrade

WEIGHTS_FORMAT = "spd-weights/1"
MODEL_PREFIX = "model."  # the network's keys inside a training checkpoint's state dict


@dataclass
class ModelFile:
    """What an SPD model file holds, in today's layout."""

    path: Path
    kind: str                           # "training checkpoint" or "weights file"
    record: dict[str, Any]              # SPDNet.metadata(): version, config, normalisation
    state: dict[str, torch.Tensor]      # the network's state dict
    protocol: dict[str, Any] | None     # the test-time protocol recorded with the model (its eval section)
    experiment: dict[str, Any] | None   # the resolved training config, when recorded
    progress: dict[str, int] = field(default_factory=dict)  # {"step", "epoch"} of a training checkpoint


@dataclass
class LoadedModel:
    model: SPDNet
    protocol: EvalConfig               # the test-time protocol recorded with the model
    experiment: dict[str, Any] | None  # the resolved training config, for training checkpoints
    kind: str                          # "training checkpoint" or "weights file"
    progress: dict[str, int] = field(default_factory=dict)
    eval = renamed("eval", "protocol")


def read_model_file(path: Path | str) -> ModelFile:
    """A training checkpoint or a weights file, told apart by their bytes. Raises WeightsError naming
    the file for anything else."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: model file not found")
    with path.open("rb") as f:
        head = f.read(16)
    # safetensors: an 8-byte little-endian header length, then a JSON header starting with '{'.
    return _weights_file(path) if head[8:9] == b"{" else _training_checkpoint(path)


def _model_part(ckpt: dict, path: Path | str) -> tuple[dict, dict[str, torch.Tensor]]:
    """A training checkpoint's model record and the model's state dict (keys without the module's
    prefix), both in today's layout."""
    record = (ckpt.get("spd") or {}).get("model")
    if not isinstance(record, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise WeightsError(f"{path}: not a checkpoint of `spd train` (no model record or no state dict: a bare "
                           "state dict, exported weights, or a checkpoint of an early pre-release?)")
    model = {k.removeprefix(MODEL_PREFIX): v for k, v in ckpt["state_dict"].items() if k.startswith(MODEL_PREFIX)}
    return upgrade(record, model, path)


def training_state(ckpt: dict, path: Path | str) -> dict[str, torch.Tensor]:
    """A training checkpoint's whole state dict (model and loss buffers) with the model's keys in
    today's layout: what resuming loads."""
    _, model = _model_part(ckpt, path)
    return {**{k: v for k, v in ckpt["state_dict"].items() if not k.startswith(MODEL_PREFIX)},
            **{MODEL_PREFIX + k: v for k, v in model.items()}}


def _training_checkpoint(path: Path) -> ModelFile:
    ckpt = read_torch_file(path, "checkpoint")
    if not isinstance(ckpt, dict):
        raise WeightsError(f"{path}: not a checkpoint of `spd train` (it holds a {type(ckpt).__name__})")
    record, model = _model_part(ckpt, path)
    experiment = (ckpt.get("hyper_parameters") or {}).get("config")
    progress = {k: int(ckpt[key]) for k, key in (("step", "global_step"), ("epoch", "epoch")) if key in ckpt}
    return ModelFile(path, "training checkpoint", record, model, (experiment or {}).get("eval"), experiment, progress)


def _weights_file(path: Path) -> ModelFile:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{path}: cannot read the safetensors file ({err})") from None
    if meta.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(f"{path}: not an SPD weights file (metadata 'format' is {meta.get('format')!r}, expected "
                           f"{WEIGHTS_FORMAT!r}; write one with `spd export --format safetensors`)")
    try:
        record, protocol = json.loads(meta["model"]), json.loads(meta["eval"])
        experiment = json.loads(meta["experiment"]) if "experiment" in meta else None
    except (KeyError, json.JSONDecodeError) as err:
        raise WeightsError(f"{path}: invalid SPD metadata ({type(err).__name__}: {err})") from None
    record, state = upgrade(record, state, path)
    return ModelFile(path, "weights file", record, state, protocol, experiment)


def recorded_protocol(protocol: dict | None, source: Path | str) -> EvalConfig:
    try:
        return build(EvalConfig, dict(protocol or {}), "eval")
    except ConfigError as err:
        raise WeightsError(f"{source}: the recorded test-time settings are invalid ({err})") from None


def load_checkpoint(path: Path | str, device: torch.device | str = "cpu") -> LoadedModel:
    """The model of any SPD model file (in eval mode, on ``device``) and its recorded protocol."""
    loaded = read_model_file(path)
    model = model_from_record(loaded.record, loaded.path)
    check_state_dict(model.state_dict(), loaded.state, loaded.path, "the recorded model")
    check_finite(loaded.state, loaded.path)
    model.load_state_dict(loaded.state)
    return LoadedModel(model.to(device).eval(), recorded_protocol(loaded.protocol, loaded.path), loaded.experiment,
                       loaded.kind, loaded.progress)


def write_weights_file(model: SPDNet, path: Path | str, metadata: dict[str, str]) -> Path:
    """The model's weights as safetensors with ``metadata`` (which must hold the record and the
    test-time settings: see :func:`spd.export.formats.metadata`), written atomically (mode as any
    new file under the user's umask)."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    try:
        with atomic_path(path) as tmp:
            save_file(state, str(tmp), metadata=metadata)
    except SafetensorError as err:  # safetensors reports a full disk or a lost mount as its own error
        raise OSError(f"{path}: the weights file could not be written ({err}); nothing was left there") from None
    return Path(path)
