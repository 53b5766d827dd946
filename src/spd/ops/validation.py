"""Checks of config and argument values: one message shape for ranges, one for choices."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import InputError


def require(section: str, checks: Iterable[tuple[str, Any, bool, str]]) -> None:
    """``checks``: (key, value, ok, rule). Raises ValueError naming the first key that is not ok:
    ``train.max_epochs is out of range: 0 (must be >= 1)``."""
    for key, value, ok, rule in checks:
        if not ok:
            raise InputError(f"{section}.{key} is out of range: {value!r} (must be {rule})")


def require_choice(key: str, value: Any, allowed: Iterable) -> None:
    """Raises ValueError ``key must be one of a, b, got 'c'`` unless ``value`` is in ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise InputError(f"{key} must be one of {', '.join(map(str, allowed))}, got {value!r}")
