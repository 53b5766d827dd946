"""Errors and problem records of the data layer; each names the file (and line) at fault."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..ops.errors import InputError


class DataError(InputError):
    """Bad or unreadable input data; the message starts with the file (and line) at fault."""

    def __init__(self, path: Path | str, message: str, line: int | None = None):
        self.path = Path(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Problem:
    """One fault found by ``spd data check``."""

    path: Path
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.message}"

    @classmethod
    def from_error(cls, err: DataError) -> "Problem":
        return cls(err.path, err.reason, err.line)
