"""Prediction over many image files (what ``spd predict`` runs): images are read ahead and the
outputs written behind by worker threads, so that the device computes while the disk works."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..data.errors import DataError
from ..data.image_io import read_image
from .predictor import Predictor
from .writers import OutputSpec, write_outputs

READ_AHEAD = 4   # batches read before they are needed
IO_THREADS = 4   # image decoding and PNG / JPEG encoding release the GIL for most of their time


def predict_files(predictor: Predictor, plans: Iterable[tuple[Path, dict[str, Path]]], spec: OutputSpec,
                  skipped: Callable[[str], None], tick: Callable[[int], None] | None = None) -> int:
    """``plans``: (image file, its output paths). An image that cannot be read is reported through
    ``skipped`` (with the reason, naming the file) and left out; any error writing an output stops
    the run. Returns the number of images predicted."""
    plans = list(plans)
    size = predictor.batch_size
    done = 0
    with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="spd-io") as pool:
        reads: deque[tuple[Path, dict[str, Path], Future]] = deque()
        writes: deque[Future] = deque()
        queued = 0

        def read_more() -> None:
            nonlocal queued
            while queued < len(plans) and len(reads) < READ_AHEAD * size:
                path, paths = plans[queued]
                reads.append((path, paths, pool.submit(read_image, path)))
                queued += 1

        def drain(limit: int) -> None:
            while len(writes) > limit:
                writes.popleft().result()  # raises a writing error here, in the main thread

        read_more()
        while reads:
            batch = []
            while reads and len(batch) < size:
                path, paths, future = reads.popleft()
                try:
                    batch.append((path, paths, future.result()))
                except DataError as err:
                    skipped(str(err))
                    if tick:
                        tick(1)
            read_more()
            if not batch:
                continue
            results = predictor.predict_tensors([(image, str(path)) for path, _, image in batch])
            for (path, paths, image), result in zip(batch, results):
                writes.append(pool.submit(write_outputs, result, image, paths, spec))
            done += len(batch)
            if tick:
                tick(len(batch))
            drain(2 * size)
        drain(0)
    return done
