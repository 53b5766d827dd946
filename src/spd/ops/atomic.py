"""Atomic file writes: write to a temporary name in the same folder, then rename, so that an
interrupted run never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path | str, temp_suffix: str | None = None) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renames it onto ``path`` if the block succeeds.

    The temporary name keeps the final suffix, so writers that pick a format from it still work;
    ``temp_suffix`` replaces it where a temporary must not look like a finished file (checkpoints,
    which a killed process may leave behind and a later run would otherwise take for its own).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = temp_suffix if temp_suffix is not None else f".tmp{path.suffix}"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600, and some writers (safetensors) replace the file with one of their own:
        # the finished file gets the mode any other new file would (0666 less the umask).
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """Yields a temporary folder beside ``path``; if the block succeeds it becomes ``path`` (a folder
    already there, an earlier run's, is deleted first), else it is deleted with what it holds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700: the mode of any other new folder
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def remove_leftovers(path: Path | str) -> list[Path]:
    """Deletes the temporary files (and folders) that :func:`atomic_path` (:func:`atomic_dir`)
    writes for ``path`` and that a killed process left (``.STEM.XXXXXXXX.tmp.SUFFIX``); for a
    caller about to write ``path`` itself. Returns what it deleted."""
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.stem}.") + r"[a-z0-9_]{8}" + re.escape(f".tmp{path.suffix}"))
    gone = []
    for candidate in path.parent.glob(f".{glob.escape(path.stem)}.*.tmp{glob.escape(path.suffix)}"):
        if pattern.fullmatch(candidate.name):
            if candidate.is_dir() and not candidate.is_symlink():
                shutil.rmtree(candidate)
            else:
                candidate.unlink(missing_ok=True)
            gone.append(candidate)
    return gone


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; set straight back
    os.umask(mask)
    return mask


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
