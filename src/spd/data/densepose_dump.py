"""Import of the reference DensePose tool's ``apply_net.py dump`` output into full-image IUV PNGs.

The dump is a ``torch.save`` list with one dict per image: ``file_name``, ``scores`` [N],
``pred_boxes_XYXY`` [N, 4] and ``pred_densepose`` (N chart results with ``labels`` [h, w] and
``uv`` [2, h, w], h, w the box size). The chart-result classes live in the ``densepose`` package,
which users often do not have; stand-ins registered under the same names let ``torch.load`` read
the file with ``weights_only=True`` (no arbitrary code from the file runs).
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..ops.atomic import write_text
from .errors import DataError
from .image_io import image_size, write_iuv
from .reader import IMAGE_SUFFIXES, index_files

log = logging.getLogger(__name__)

_CHART_MODULE = "densepose.structures.chart_result"


class _ChartResultStandIn:
    """Receives the pickled attributes (``labels``, ``uv`` and, with confidences, sigma/kappa maps)."""

    labels: torch.Tensor
    uv: torch.Tensor


class DensePoseChartResultStandIn(_ChartResultStandIn):
    pass


class DensePoseChartResultWithConfidencesStandIn(_ChartResultStandIn):
    pass


STAND_INS = [
    (DensePoseChartResultStandIn, f"{_CHART_MODULE}.DensePoseChartResult"),
    (DensePoseChartResultWithConfidencesStandIn, f"{_CHART_MODULE}.DensePoseChartResultWithConfidences"),
]


def load_dump(path: Path | str) -> list[dict]:
    """The dump's list of per-image dicts, loaded on the CPU without the densepose package."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "DensePose dump file not found")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(2)
        if head[:1] == b"\x80":  # a pickle protocol marker: apply_net dumps of older detectron2 versions
            raise DataError(path, "an old-format apply_net dump (plain pickle). Reading it would run code from the "
                                  "file, which SPD does not do; dump again with a current DensePose (`apply_net.py "
                                  "dump` writes torch.save files), or re-save the list with torch.save where "
                                  "densepose is installed")
    try:
        with torch.serialization.safe_globals(STAND_INS):
            entries = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a foreign or broken file
        raise DataError(path, f"cannot read as an apply_net dump ({type(err).__name__}: {err})") from err
    if not isinstance(entries, list):
        raise DataError(path, f"expected a list of per-image dicts, found {type(entries).__name__}")
    return entries


def paste_chart(labels: torch.Tensor, uv: torch.Tensor, box_xyxy: torch.Tensor,
                image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pastes one box-sized chart result into a full image at the box's top-left corner.

    Returns (part index uint8 [H, W], uv float32 [2, H, W]); pixels outside the box are 0.
    The corner is truncated to whole pixels as the reference tool's visualiser does.
    """
    height, width = image_hw
    index = np.zeros((height, width), dtype=np.uint8)
    out_uv = np.zeros((2, height, width), dtype=np.float32)
    h, w = labels.shape[-2:]
    x0, y0 = int(box_xyxy[0]), int(box_xyxy[1])
    # Source and destination windows after clipping the box to the image.
    dx0, dy0 = max(x0, 0), max(y0, 0)
    dx1, dy1 = min(x0 + w, width), min(y0 + h, height)
    if dx1 <= dx0 or dy1 <= dy0:
        return index, out_uv
    sx0, sy0 = dx0 - x0, dy0 - y0
    window = (slice(sy0, sy0 + dy1 - dy0), slice(sx0, sx0 + dx1 - dx0))
    part = labels.numpy()[window].astype(np.uint8)
    index[dy0:dy1, dx0:dx1] = part
    out_uv[:, dy0:dy1, dx0:dx1] = np.where(part > 0, uv.float().clamp(0, 1).numpy()[(slice(None),) + window], 0)
    return index, out_uv


@dataclass
class DumpImport:
    written: list[Path] = field(default_factory=list)
    no_detection: list[str] = field(default_factory=list)
    no_image: list[str] = field(default_factory=list)


def _entries(path: Path) -> Iterator[tuple[int, dict]]:
    for i, entry in enumerate(load_dump(path)):
        if not isinstance(entry, dict) or not {"file_name", "scores", "pred_boxes_XYXY"} <= entry.keys():
            raise DataError(path, f"entry {i} lacks file_name / scores / pred_boxes_XYXY")
        yield i, entry


def import_dump(dump: Path | str, images: Path | str, out: Path | str) -> DumpImport:
    """Writes ``out/<id>.png`` (I, 255U, 255V) for the top-scoring person of each image of the dump.

    Images are matched to dump entries by file name stem in ``images``. Images without a detection
    are listed in ``out/no_detection.txt`` (they get no IUV file, so readers mark them as lacking a
    DensePose target) rather than dropped silently.
    """
    dump, out = Path(dump), Path(out)
    files = index_files(Path(images), IMAGE_SUFFIXES)
    result = DumpImport()
    for i, entry in _entries(dump):
        key = Path(str(entry["file_name"])).stem
        if key not in files:
            result.no_image.append(key)
            continue
        scores = torch.as_tensor(entry["scores"]).reshape(-1)
        results = entry.get("pred_densepose") or []
        if scores.numel() == 0 or len(results) == 0:
            result.no_detection.append(key)
            continue
        if len(results) != scores.numel():
            raise DataError(dump, f"entry {i} ({key}): {scores.numel()} scores but {len(results)} DensePose results")
        best = int(scores.argmax())
        chart = results[best]
        if not isinstance(chart, _ChartResultStandIn) or not hasattr(chart, "labels"):
            raise DataError(dump, f"entry {i} ({key}): pred_densepose holds {type(chart).__name__}, "
                                  "not a chart result with labels and uv")
        box = torch.as_tensor(entry["pred_boxes_XYXY"]).reshape(-1, 4)[best].float()
        labels, uv = torch.as_tensor(chart.labels), torch.as_tensor(chart.uv)
        if labels.dim() != 2 or tuple(uv.shape) != (2, *labels.shape):
            raise DataError(dump, f"entry {i} ({key}): the chart's uv has shape {tuple(uv.shape)}, its labels "
                                  f"{tuple(labels.shape)}; expected uv [2, H, W] for labels [H, W]")
        if not bool(torch.isfinite(box).all()):
            raise DataError(dump, f"entry {i} ({key}): box {box.tolist()} is not finite")
        index, uv = paste_chart(labels, uv, box, image_size(files[key]))
        target = out / f"{key}.png"
        write_iuv(target, index, uv)
        result.written.append(target)
    write_text(out / "no_detection.txt", "".join(f"{k}\n" for k in result.no_detection))
    if result.no_image:
        log.warning("%d dump entries name images not found in %s (e.g. %s)", len(result.no_image), images,
                    result.no_image[0])
    return result
