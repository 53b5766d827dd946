"""Loading a model for prediction from any file SPD writes, without Lightning.

* a training checkpoint (``*.ckpt``): the model config and normalisation recorded under ``spd``
  (older checkpoints: rebuilt from the saved experiment config), weights under ``model.``;
* an exported weights file (``*.safetensors``, :mod:`spd.export`): the same record in its metadata.

The test-time settings recorded with the model (the experiment's ``eval`` section) become the
Predictor's defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import from_dict
from ..config.load import ConfigError, build
from ..config.schema import EvalConfig, ExperimentConfig
from ..model import InputNormalisation, SPDNet, preset
from ..model.config import ModelConfig

WEIGHTS_FORMAT = "spd-weights/1"


def model_config(config: ExperimentConfig, parsing_space: str) -> ModelConfig:
    """The model an experiment config describes."""
    return preset(config.model.preset, **config.model.overrides(), parsing_space=parsing_space)


@dataclass
class LoadedModel:
    model: SPDNet
    eval: EvalConfig               # test-time settings recorded with the model
    experiment: dict[str, Any] | None  # the resolved training config, for training checkpoints
    kind: str                      # "training checkpoint" or "weights file"
    progress: dict[str, int] = field(default_factory=dict)  # {"step", "epoch"} of a training checkpoint


def _model_from_record(record: dict, path: Path) -> SPDNet:
    try:
        # Models recorded before the backbone had a choice of layout have torchvision's.
        config = build(ModelConfig, {"layout": "torchvision", **record["config"]}, "model")
        normalisation = build(InputNormalisation, record["normalisation"], "normalisation")
    except (KeyError, ConfigError) as err:
        raise ValueError(f"{path}: the recorded model description is invalid ({err})") from err
    return SPDNet(config, normalisation)


def _load_state(model: SPDNet, state: dict[str, torch.Tensor], path: Path) -> None:
    missing, unexpected = model.state_dict().keys() - state.keys(), state.keys() - model.state_dict().keys()
    if missing or unexpected:
        what = (f"missing {sorted(missing)[0]!r}" if missing else "") + (", " if missing and unexpected else "") + \
               (f"unexpected {sorted(unexpected)[0]!r}" if unexpected else "")
        raise ValueError(f"{path}: weights do not match the recorded model ({len(missing)} missing, "
                         f"{len(unexpected)} unexpected: {what})")
    for name, tensor in model.state_dict().items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ValueError(f"{path}: weight {name!r} has shape {tuple(state[name].shape)}, the model "
                             f"expects {tuple(tensor.shape)}")
    model.load_state_dict(state)


def _training_checkpoint(path: Path) -> LoadedModel:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a foreign or broken file
        raise ValueError(f"{path}: cannot read the checkpoint ({type(err).__name__}: {err})") from err
    try:
        hparams = ckpt["hyper_parameters"]
        experiment = from_dict(hparams["config"])
        weights = ckpt["state_dict"]
    except (KeyError, TypeError, ConfigError) as err:
        raise ValueError(f"{path}: not an SPD training checkpoint (no saved config: {err})") from err
    record = ckpt.get("spd", {}).get("model")
    model = (_model_from_record(record, path) if record
             else SPDNet(model_config(experiment, hparams.get("parsing_space", "lip"))))
    _load_state(model, {k.removeprefix("model."): v for k, v in weights.items() if k.startswith("model.")}, path)
    progress = {k: int(ckpt[key]) for k, key in (("step", "global_step"), ("epoch", "epoch")) if key in ckpt}
    return LoadedModel(model, experiment.eval, hparams["config"], "training checkpoint", progress)


def _weights_file(path: Path) -> LoadedModel:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the safetensors file ({err})") from err
    if meta.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"{path}: not an SPD weights file (metadata 'format' is {meta.get('format')!r}, "
                         f"expected {WEIGHTS_FORMAT!r}; write one with `spd export --format safetensors`)")
    try:
        record, settings = json.loads(meta["model"]), json.loads(meta["eval"])
        tta = build(EvalConfig, settings, "eval")
    except (KeyError, json.JSONDecodeError, ConfigError) as err:
        raise ValueError(f"{path}: invalid SPD metadata ({err})") from err
    model = _model_from_record(record, path)
    _load_state(model, state, path)
    return LoadedModel(model, tta, json.loads(meta["experiment"]) if "experiment" in meta else None, "weights file")


def load_checkpoint(path: Path | str, device: torch.device | str = "cpu") -> LoadedModel:
    """The model (in eval mode, on ``device``) and its recorded settings. Raises FileNotFoundError or
    ValueError naming the file (and the key at fault) for anything that is not an SPD model file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    with path.open("rb") as f:
        head = f.read(16)
    # safetensors: 8-byte little-endian header length, then a JSON header starting with '{'.
    loaded = _weights_file(path) if head[8:9] == b"{" else _training_checkpoint(path)
    loaded.model.to(device).eval()
    return loaded
