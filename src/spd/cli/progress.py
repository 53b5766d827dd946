"""Progress bars for the command line: the library's progress hooks, drawn by tqdm."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from tqdm import tqdm


@contextlib.contextmanager
def bars() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """Yields ``progress(description, total) -> advance(n=1)``: a bar per call (a line for total 0);
    every bar is closed on exit."""
    opened: list[tqdm] = []

    def progress(description: str, total: int) -> Callable[[int], None]:
        for bar in opened:
            bar.close()
        if total <= 0:
            print(description, flush=True)
            return lambda n=1: None
        bar = tqdm(total=total, desc=description, unit="img", disable=None)
        opened.append(bar)
        return lambda n=1: bar.update(n)

    try:
        yield progress
    finally:
        for bar in opened:
            bar.close()
