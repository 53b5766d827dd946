"""Argument types of the command line: every numeric option is checked when the command line is
parsed, and a bad value is named with its option (``argument --port: must be ...``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An int within [low, high] (either bound may be open)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {_range(low, high)}, got {value}")
        return value
    return parse


def number(low: float | None = None, high: float | None = None, low_open: bool = False) -> Callable[[str], float]:
    """A finite float within [low, high] (``low_open``: strictly above ``low``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            rule = f"> {low:g}" + (f" and <= {high:g}" if high is not None else "") if low_open \
                else _range(float(low) if low is not None else None, float(high) if high is not None else None)
            raise argparse.ArgumentTypeError(f"must be a finite number {rule}, got {text}")
        return value
    return parse


def _range(low, high) -> str:
    if low is not None and high is not None:
        return f"within {low:g}..{high:g}" if isinstance(low, float) else f"within {low}..{high}"
    return f">= {low}" if low is not None else f"<= {high}"


PORT = integer(0, 65535)
COUNT = integer(1)
SIDE = integer(8, 8192)          # an input side in pixels: the network's input, resized to
SCALE = number(0, 8, low_open=True)
