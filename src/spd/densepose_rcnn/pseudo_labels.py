"""``spd data densepose``: DensePose R-CNN over a folder of images -> the IUV PNGs training reads,
the files and the rule of ``spd data import-densepose`` (the top-scoring person of each image,
pasted at its box: :func:`spd.data.densepose_dump.paste_chart`).

Resumable: an image whose IUV file exists, or that an earlier run found no person in, is not
predicted again, and each file appears under its name only once complete. The settings that
decide the files (weights, score threshold, people) are recorded in ``OUT/densepose_settings.json``
and a run with other settings into the same folder is refused, so that a folder never mixes them. ``shard=(i, n)`` takes
every n-th image from the i-th (sorted by name), so that n processes, GPUs or cluster jobs split
one folder; each shard lists its images without a person in its own file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.densepose_dump import paste_chart
from ..data.errors import DataError
from ..data.image_io import read_image, write_iuv
from ..data.reader import IMAGE_SUFFIXES, index_files
from ..ops.atomic import write_text
from ..ops.errors import InputError
from .detector import DensePoseRCNN, input_shape


@dataclass
class PseudoLabels:
    written: list[str] = field(default_factory=list)      # image ids given an IUV file by this run
    no_person: list[str] = field(default_factory=list)    # ids with no detection (this run)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (image path, why)
    skipped: int = 0                                       # done by an earlier run


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> (i, n)."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected i/n, e.g. 0/4 for the first of four") from None
    if not 0 <= i < n:
        raise InputError(f"--shard {text!r}: i/n needs 0 <= i < n")
    return i, n


def no_person_file(out: Path, shard: tuple[int, int]) -> Path:
    return out / ("no_detection.txt" if shard[1] == 1 else f"no_detection.{shard[0]}-of-{shard[1]}.txt")


def shard_ids(images: Path, shard: tuple[int, int]) -> dict[str, Path]:
    files = index_files(Path(images), IMAGE_SUFFIXES)
    if not files:
        raise DataError(images, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return {k: files[k] for k in sorted(files)[shard[0]::shard[1]]}


def iuv_of(found, image_hw: tuple[int, int], people: int | None = 1) -> tuple[np.ndarray, np.ndarray]:
    """One image's IUV (part index uint8 [H, W], U, V float32 [2, H, W]) of its ``people`` most
    confident detections (all: None), each pasted at its box, a more confident person over a less
    confident one where they overlap."""
    count = len(found.charts) if people is None else min(people, len(found.charts))
    index = np.zeros(image_hw, dtype=np.uint8)
    uv = np.zeros((2, *image_hw), dtype=np.float32)
    for i in reversed(range(count)):
        chart = found.charts[i]
        part, part_uv = paste_chart(chart.labels.cpu(), chart.uv.cpu(), found.boxes[i].cpu(), image_hw)
        on = part > 0
        index[on], uv[:, on] = part[on], part_uv[:, on]
    return index, uv


SETTINGS = "densepose_settings.json"


def claim_folder(out: Path, settings: dict) -> None:
    """Records ``settings`` in ``out`` or checks them against those recorded there."""
    path = out / SETTINGS
    if path.is_file():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise DataError(path, "unreadable; it records the settings this folder's IUV files were made with") from None
        if before != settings:
            changed = ", ".join(f"{k} {before.get(k)!r} -> {v!r}" for k, v in settings.items() if before.get(k) != v)
            raise InputError(f"{out}: its IUV files were made with other settings ({changed}); give another --out, "
                             f"or delete the folder to start again")
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(settings, indent=1) + "\n")


def densepose_pseudo_labels(model: DensePoseRCNN, images: Path | str, out: Path | str,
                            shard: tuple[int, int] = (0, 1), tick: Callable[[int], None] | None = None,
                            people: int | None = 1, weights_name: str = "", batch_size: int = 1) -> PseudoLabels:
    """Writes ``out/<id>.png`` (I, 255 U, 255 V) for the images of ``images`` in this shard: the
    most confident person (``people=1``, the training targets' rule) or every detected one
    (``people=None``). ``batch_size`` images of one network input shape
    (:func:`~.detector.input_shape`) go through the backbone together, so that every file is
    what the image alone gives (images wait, at most ``4 * batch_size`` of them, for others of
    their shape)."""
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    out = Path(out)
    todo = shard_ids(Path(images), shard)
    claim_folder(out, {"weights": weights_name, "min_score": model.config.score_thresh,
                       "people": "all" if people is None else people})
    listed = no_person_file(out, shard)
    earlier = set(listed.read_text(encoding="utf-8").split()) if listed.is_file() else set()
    result = PseudoLabels()
    waiting: dict[tuple[int, int], list[tuple[str, Path, torch.Tensor]]] = {}

    def done(count: int) -> None:
        if tick is not None:
            tick(count)

    with open(listed, "a", encoding="utf-8") as no_person:
        def run(group: list[tuple[str, Path, torch.Tensor]]) -> None:
            try:
                found = model.detect_batch([image for _, _, image in group], charts=people)  # DensePose of those written only
            except (RuntimeError, ValueError, MemoryError) as err:
                if len(group) > 1:  # each image alone: the failure is one image's, or the batch's memory
                    for item in group:
                        run([item])
                    return
                # An image that cannot run (out of memory, say) does not stop the others.
                result.failed.append((str(group[0][1]), f"{type(err).__name__}: {err}"))
                done(1)
                return
            for (key, _, image), detections in zip(group, found):
                if len(detections.scores) == 0:
                    no_person.write(f"{key}\n")
                    no_person.flush()  # a killed run keeps what it found
                    result.no_person.append(key)
                else:
                    index, uv = iuv_of(detections, tuple(image.shape[-2:]), people)
                    write_iuv(out / f"{key}.png", index, uv)
                    result.written.append(key)
            done(len(group))

        for key, path in todo.items():
            if (out / f"{key}.png").is_file() or key in earlier:
                result.skipped += 1
                done(1)
                continue
            try:
                image = read_image(path)
            except (DataError, OSError, ValueError) as err:
                result.failed.append((str(path), f"{type(err).__name__}: {err}"))
                done(1)
                continue
            shape = input_shape(*image.shape[-2:])
            waiting.setdefault(shape, []).append((key, path, image))
            if len(waiting[shape]) == batch_size:
                run(waiting.pop(shape))
            elif sum(len(g) for g in waiting.values()) >= 4 * batch_size:
                run(waiting.pop(max(waiting, key=lambda k: len(waiting[k]))))
        for group in list(waiting.values()):
            run(group)
    return result


def image_count(images: Path | str, shard: tuple[int, int] = (0, 1)) -> int:
    return len(shard_ids(Path(images), shard))

