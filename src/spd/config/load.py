"""YAML -> typed :class:`ExperimentConfig`. Unknown keys and wrongly typed values are errors that
name the key (and the file); ``base:`` inherits from another file; ``--set key=value`` overrides."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from .schema import ExperimentConfig


class ConfigError(ValueError):
    pass


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_config_file(path: Path | str, _seen: tuple[Path, ...] = ()) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'base' files include each other")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    base = doc.pop("base", None)
    if base is None:
        return doc
    return _merge(read_config_file(path.parent / base, _seen + (path.resolve(),)), doc)


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for inner in (a for a in args if a is not type(None)):
            try:
                return _convert(value, inner, where)
            except ConfigError as err:
                errors.append(str(err).split(": expected ", 1)[-1].split(", got ", 1)[0])
        raise ConfigError(f"{where}: expected {' or '.join(errors)}, got {value!r}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return build(hint, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0]
        if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
            return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if hint is float and isinstance(value, str):
        # YAML 1.1 reads "1e-4" (no dot) as a string; accept any finite number written that way.
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if hint is float:
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return value


def build(cls: type, doc: dict, where: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(doc) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown key {prefix + unknown[0]!r} (known keys{' of ' + where if where else ''}: "
                          f"{', '.join(sorted(names))})")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}" if where else k) for k, v in doc.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        # Messages that already name the key (``train.max_epochs is ...``) need no section prefix.
        named = bool(where) and str(err).startswith(f"{where}.")
        raise ConfigError(str(err) if named else f"{where or 'config'}: {err}") from err


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


def to_dict(config: Any) -> dict:
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def from_dict(doc: dict) -> ExperimentConfig:
    return build(ExperimentConfig, doc)
