"""YAML -> typed :class:`ExperimentConfig`, resolved once. Unknown keys and wrongly typed values are
errors that name the key (and the file); ``base:`` inherits from another file; ``--set key=value``
overrides; the model section's ``preset`` is expanded here (see :meth:`spd.model.ModelConfig.expand`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..ops.typed import ConfigError, build, merge, to_dict
from .schema import ExperimentConfig

__all__ = ["ConfigError", "apply_overrides", "from_dict", "load_config", "read_config_file", "to_dict"]


def read_config_file(path: Path | str, _seen: tuple[Path, ...] = ()) -> dict:
    """A YAML config file as a mapping, its ``base:`` files merged under it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'base' files include each other")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a YAML config (not UTF-8 text: byte {err.object[err.start]:#04x} at offset "
                          f"{err.start})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    base = doc.pop("base", None)
    if base is None:
        return doc
    return merge(read_config_file(path.parent / base, _seen + (path.resolve(),)), doc)


def apply_overrides(doc: dict, overrides: list[str]) -> dict:
    """``["train.max_epochs=3", "model.preset=s"]``; values are parsed as YAML."""
    doc = dict(doc)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({getattr(err, 'problem', None) or err})") from None
        parts = key.split(".")
        node = doc
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is not None and not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[:depth + 1])} is a value ({child!r}), not a section")
            node[part] = dict(child or {})
            node = node[part]
        node[parts[-1]] = value
    return doc


def load_config(path: Path | str | None = None, overrides: list[str] = ()) -> tuple[ExperimentConfig, dict]:
    """The typed config and the resolved plain dict (what checkpoints store)."""
    doc = read_config_file(path) if path else {}
    doc = apply_overrides(doc, list(overrides))
    try:
        config = build(ExperimentConfig, doc)
    except ConfigError as err:
        raise ConfigError(f"{path or 'config'}: {err}") from None
    return config, to_dict(config)


def from_dict(doc: dict) -> ExperimentConfig:
    return build(ExperimentConfig, doc)
