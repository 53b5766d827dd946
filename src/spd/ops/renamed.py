"""Names that moved: reading an old name is an error that gives the new one (for attributes of a
class, and names of a module), so that code written against an earlier version is told what to
change instead of meeting a bare AttributeError."""

from __future__ import annotations

from collections.abc import Callable


def renamed(old: str, new: str) -> property:
    """A class attribute that raises ``AttributeError: OLD is now NEW`` when read."""

    def read(self):
        raise AttributeError(f"{type(self).__name__}.{old} is now {new}")

    return property(read)


def module_getattr(module: str, moved: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__``: ``spd.x.OLD is now NEW`` for the names in ``moved``."""

    def __getattr__(name: str):
        if name in moved:
            raise AttributeError(f"{module}.{name} is now {moved[name]}")
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
