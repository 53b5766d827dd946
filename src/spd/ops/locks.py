"""Advisory file locks (``flock``). The system drops a lock when its holder exits, however it exits
(kill -9 included), so a stale lock never blocks a rerun. Where flock is missing (Windows, some NFS
and Lustre mounts) the lock says so and the caller decides whether to go on unguarded."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCKING = fcntl is not None  # whether this system has flock at all


@dataclass
class FileLock:
    file: TextIO               # the lock file, open for reading and appending (holder notes)
    held: bool                 # this process holds the lock
    unavailable: str = ""      # why this file system cannot lock (then ``held`` is False)


@contextlib.contextmanager
def file_lock(path: Path, wait: bool = True) -> Iterator[FileLock]:
    """An exclusive lock on ``path`` (created) while the block runs. ``wait=False``: do not wait for
    another holder; the block then runs with ``held`` False."""
    with open(path, "a+", encoding="utf-8") as f:
        lock = FileLock(f, False, "" if LOCKING else "flock is not available on this system")
        if LOCKING:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                lock.held = True
            except BlockingIOError:
                pass
            except OSError as err:
                lock.unavailable = err.strerror or str(err)
        # yielded outside the except blocks, so that an error in the caller's block is not chained to them
        try:
            yield lock
        finally:
            if lock.held:
                fcntl.flock(f, fcntl.LOCK_UN)
