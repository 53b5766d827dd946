"""The model description a model file records (``SPDNet.metadata()``) and its upgrade from earlier
layouts: one explicit function, :func:`upgrade`, so that nothing else keeps defaults for old files."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..model import InputNormalisation, ModelConfig, SPDNet
from ..model.spd_net import RECORD_VERSION
from ..ops.state import WeightsError
from ..ops.typed import ConfigError, build

_FPN_INITIAL = re.compile(r"^initial\.(\w+)\.trunk\.")


def upgrade(record: dict, state: dict[str, torch.Tensor], source: Path | str) -> tuple[dict, dict[str, torch.Tensor]]:
    """A record and its state dict in today's layout (version :data:`RECORD_VERSION`).

    Version 1 (files written before December 2026): one flat model config for both families, the
    trunk's keys under ``backbone.`` and ``decoder.``, the CPU family's initial branches' convs
    under ``trunk.``. Earlier files (no ``layout``, or the CPU family's two-conv heads) are refused."""
    version = record.get("version", 1)
    if version == RECORD_VERSION:
        return record, drop_unused_features(record, state)
    if version != 1:
        raise WeightsError(f"{source}: model record version {version!r}; this spd reads versions 1 and {RECORD_VERSION}")
    old = dict(record.get("config") or {})
    family = old.get("family", "dilated")
    config = {k: old[k] for k in ("name", "tasks", "feeds", "refine_stages", "parsing_space") if k in old}
    config["train_scales"] = old.get("scales", [1.0])
    if family == "fpn":
        if (old.get("branch_convs", 2), old.get("refine_fuse", 3)) != (1, 1):
            raise WeightsError(f"{source}: made with the CPU family's retired heads (two 3x3 convs per initial "
                               "branch, a 3x3 fusing conv), which this spd no longer builds; train it again")
        config["fpn"] = {"encoder": old.get("backbone"), "decoder_width": old.get("decoder_width"),
                         "head_width": old.get("head_width")}
    else:
        if "layout" not in old:
            raise WeightsError(f"{source}: made before the backbone had a layout (an early pre-release); train it again")
        config["dilated"] = {k: old[k] for k in ("depth", "layout", "output_stride", "frozen_bn", "width", "head_init")
                             if k in old}
    renamed = {}
    for key, value in state.items():
        new = key.replace("backbone.", "trunk.encoder.", 1) if key.startswith("backbone.") else key
        new = new.replace("decoder.", "trunk.decoder.", 1) if new.startswith("decoder.") else new
        if family == "fpn":
            new = _FPN_INITIAL.sub(r"initial.\1.feature.", new)
        renamed[new] = value
    record = {**record, "version": RECORD_VERSION, "config": config}
    return record, drop_unused_features(record, renamed)


def drop_unused_features(record: dict, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Files written before December 2026 of a dilated model without refinement stages hold the
    parsing branch's feature convs, which fed nothing (the output reads res5) and are no longer built."""
    config = record.get("config") or {}
    if config.get("refine_stages") != 0 or config.get("dilated") is None:
        return state
    return {k: v for k, v in state.items() if not k.startswith("initial.parsing.feature.")}


def model_description(record: dict, source: Path | str) -> tuple[ModelConfig, InputNormalisation]:
    """The network's config and input normalisation as the record describes them (today's layout;
    see :func:`upgrade`), checked without building the network."""
    try:
        config = build(ModelConfig, dict(record["config"]), "model")
        normalisation = build(InputNormalisation, record["normalisation"], "normalisation")
    except (KeyError, TypeError, ConfigError) as err:
        raise WeightsError(f"{source}: the recorded model description is invalid ({err})") from None
    return config, normalisation


def model_from_record(record: dict, source: Path | str) -> SPDNet:
    """An untrained network as the record describes it."""
    return SPDNet(*model_description(record, source))
