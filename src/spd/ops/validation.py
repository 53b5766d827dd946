"""Range checks of config values, one message shape for every section."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def require(section: str, checks: Iterable[tuple[str, Any, bool, str]]) -> None:
    """``checks``: (key, value, ok, rule). Raises ValueError naming the first key that is not ok:
    ``train.max_epochs is out of range: 0 (must be >= 1)``."""
    for key, value, ok, rule in checks:
        if not ok:
            raise ValueError(f"{section}.{key} is out of range: {value!r} (must be {rule})")
