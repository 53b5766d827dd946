"""A fast pass over a split's files before training starts: every image and label opens as an
image (headers only, no full decode) and their sizes agree. Bad files would otherwise be found
mid-epoch, after minutes or hours of training."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from .errors import DataError, Problem
from .image_io import PIL_ERRORS, require_file
from .reader import ParsingReader

log = logging.getLogger(__name__)


def _size(path: Path) -> tuple[int, int]:
    """(width, height) as the pipeline sees it (EXIF orientation applied), from the header."""
    require_file(path, "file")
    try:
        with Image.open(path) as im:
            orientation = im.getexif().get(0x0112, 1)
            w, h = im.size
    except PIL_ERRORS as err:
        raise DataError(path, f"cannot read as an image ({err})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def scan_headers(reader: ParsingReader, tick: Callable[[], None] | None = None) -> dict[str, Problem]:
    """Record id -> the first problem of its files (missing, empty, not an image, label size !=
    image size)."""
    problems = {}
    for record in reader.records:
        try:
            size = _size(record.image)
            for target in (record.parsing, record.densepose):
                if target is not None and _size(target) != size:
                    raise DataError(target, f"is {_size(target)[0]}x{_size(target)[1]}, its image "
                                            f"{record.image.name} is {size[0]}x{size[1]}")
        except DataError as err:
            problems[record.id] = Problem.from_error(err)
        if tick:
            tick()
    return problems


def verified(reader: ParsingReader, skip_bad: bool) -> ParsingReader:
    """``reader`` after :func:`scan_headers`: any bad file is an error listing them, unless
    ``skip_bad``, which leaves those records out with a warning naming each."""
    problems = scan_headers(reader)
    if not problems:
        return reader
    listed = "; ".join(str(p) for p in list(problems.values())[:5]) + (" …" if len(problems) > 5 else "")
    if not skip_bad:
        raise DataError(reader.root, f"split {reader.split!r}: {len(problems)} of {len(reader)} samples have bad files "
                                     f"({listed}); fix them, or set data.skip_corrupt: true to leave them out")
    for problem in problems.values():
        log.warning("leaving out a sample of split %r: %s", reader.split, problem)
    reader.records = [r for r in reader.records if r.id not in problems]
    return reader
