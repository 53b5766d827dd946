"""Typed dataclasses from plain mappings (YAML documents, records saved in model files): every
value converted to its field's type, unknown keys and wrong types named by their dotted key.

A dataclass may declare ``RENAMED = {"old_key": "new.key"}`` (an old key is then an error that gives
the new name), ``RETIRED = {"old_key": "why"}`` (an error that says why it went), and ``expand(doc) -> doc``, a classmethod applied to its mapping before it is built
(the model section expands its ``preset`` there).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from .errors import InputError


class ConfigError(InputError):
    """A config value, key or file that cannot be used; the message names it."""


def merge(base: dict, update: dict) -> dict:
    """``update`` over ``base``, mappings merged key by key (a value, list or None replaces)."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) == 1:  # Optional[X]: X's own message
            return _convert(value, kinds[0], where)
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
        inner = args[1] if len(args) == 2 else Any
        return {str(k): _convert(v, inner, f"{where}.{k}") if inner is not Any else v for k, v in value.items()}
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
    """``cls(**doc)`` with every value converted to its field's type; raises ConfigError naming the key."""
    if hasattr(cls, "expand"):
        doc = cls.expand(dict(doc), where)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(doc) - names)
    prefix = f"{where}." if where else ""
    for key in unknown:
        if key in getattr(cls, "RENAMED", {}):
            raise ConfigError(f"{prefix}{key} was renamed {prefix}{cls.RENAMED[key]}")
        if key in getattr(cls, "RETIRED", {}):
            raise ConfigError(f"{prefix}{key} no longer exists: {cls.RETIRED[key]} (docs/changelog.md)")
    if unknown:
        raise ConfigError(f"unknown key {prefix + unknown[0]!r} (known keys{' of ' + where if where else ''}: "
                          f"{', '.join(sorted(names))})")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}" if where else k) for k, v in doc.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        # Messages that already name the key (``train.max_epochs is ...``) need no section prefix.
        named = bool(where) and str(err).startswith(f"{where}.")
        raise ConfigError(str(err) if named else f"{where or 'config'}: {err}") from err


def to_dict(value: Any) -> Any:
    """A dataclass (nested) as plain dicts, lists and values: what YAML and JSON hold."""
    if dataclasses.is_dataclass(value):
        return {f.name: to_dict(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_dict(v) for v in value]
    if isinstance(value, dict):
        return {k: to_dict(v) for k, v in value.items()}
    return value
