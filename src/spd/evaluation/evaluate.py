"""Evaluation of a checkpoint, or of saved predictions of any method, under the same protocol."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..data.dataset import ParsingDataset
from ..data.errors import DataError
from ..data.image_io import read_label
from ..data.pose_csv import read_pose_csv
from ..data.reader import ParsingReader
from ..labels import LabelMapping, label_space
from ..inference import EvalConfig, Prediction, predict_batch, protocol_dict, resolve_precision
from ..inference.precision import in_layout
from ..model import SPDNet
from ..ops.errors import InputError
from ..weights import load_checkpoint
from .evaluator import EvalResult, Evaluator


BATCH_SIZE = 4  # images per forward pass in evaluation (docs/results.md: what batching gains on a CPU)

log = logging.getLogger(__name__)


def load_model(checkpoint: Path | str, device: torch.device | str = "cpu") -> tuple[SPDNet, dict[str, Any] | None]:
    """The model of a checkpoint or weights file, and the training config saved with it (if any)."""
    loaded = load_checkpoint(checkpoint, device)
    return loaded.model, loaded.experiment


def _meta(name: str, reader: ParsingReader, protocol: dict, source: dict) -> dict[str, Any]:
    return {"name": name, "source": source, "protocol": protocol,
            "data": {"root": str(reader.root), "split": reader.split, "label_space": reader.label_space,
                     "layout": reader.layout},
            "spd_version": __version__, "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def default_eval_dir(source: Path, reader: ParsingReader, mapping: str | None, predictions: bool = False) -> Path:
    """Where results go unless ``--out`` says: named by what was evaluated on what, so that
    evaluating another checkpoint, dataset, split or mapping never replaces earlier results.
    A run's checkpoint: ``RUN/eval/<checkpoint>_<data>_<split>[_map-<m>]``; a weights file or a
    predictions folder: beside it."""
    tag = f"{source.stem if not predictions else source.name}_{Path(reader.root).name}_{reader.split}"
    tag += f"_map-{mapping}" if mapping else ""
    if predictions:
        return source.parent / f"eval_{tag}"
    run = source.parent.parent if source.parent.name == "checkpoints" else source.parent
    return run / "eval" / tag


def evaluate_model(model: SPDNet, reader: ParsingReader, protocol: EvalConfig, mapping: LabelMapping | None = None,
                   name: str = "", source: dict | None = None, num_workers: int = 2,
                   tick: Callable[[], None] | None = None, densepose_truth: str = "synthetic ground truth",
                   subsets: dict[str, set[str]] | None = None, precision: str = "auto",
                   on_prediction: Callable[[dict, Prediction], None] | None = None,
                   batch_size: int = BATCH_SIZE) -> EvalResult:
    """The whole split's metrics; ``subsets`` (name -> image ids) also scores each subset on its own
    (``result.subsets[name]``), from the same predictions. ``precision``: ``"32"``, ``"bf16"`` (the
    network under bfloat16 autocast) or ``"auto"`` (bf16 where it is faster for this model here;
    :func:`~spd.inference.resolve_precision`); the result records it when not float32. ``on_prediction(item, prediction)`` sees every sample
    (in split order) with its prediction (on the model's device), e.g. to draw some without
    predicting them again. ``batch_size`` images of any sizes go through the network together
    (the metrics are the same for any batch size); the metric states live on the model's device."""
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    tasks = model.config.tasks
    choice = resolve_precision(precision, model, protocol.input_size)
    if precision == "auto":
        log.info("%s", choice)
    precision = choice.precision

    def new_evaluator() -> Evaluator:
        return Evaluator(model.config.parsing_space, reader.label_space, mapping, tasks, has_pose=reader.has_pose,
                         densepose_truth=densepose_truth).to(device)

    evaluator = new_evaluator()
    parts = {key: (ids, new_evaluator()) for key, ids in (subsets or {}).items()}
    loader = torch.utils.data.DataLoader(ParsingDataset(reader), batch_size=batch_size, num_workers=num_workers,
                                         collate_fn=list)  # samples keep their own sizes
    model.eval()
    with in_layout(model, True if choice.channels_last else None):  # the caller's model as it was, after
        for items in loader:
            predictions = predict_batch(model, [item["image"].to(device) for item in items], protocol, precision)
            for item, prediction in zip(items, predictions):
                evaluator.update(prediction, item)
                for ids, part in parts.values():
                    if item["id"] in ids:
                        part.update(prediction, item)
                if on_prediction:
                    on_prediction(item, prediction)
                if tick:
                    tick()
    # Said only when not float32, the default, so that results written before it compare as before;
    # `spd report` warns when rows were evaluated under different protocols.
    settings = protocol_dict(protocol) | ({"precision": precision} if precision != "32" else {})
    meta = _meta(name, reader, settings, source or {"model": model.config.name})
    result = evaluator.result(meta)
    result.subsets = {key: part.result({**meta, "subset": key}) for key, (_, part) in parts.items()}
    return result


def evaluate_predictions(pred_dir: Path | str, reader: ParsingReader, pred_space: str | None = None,
                         mapping: LabelMapping | None = None, name: str = "",
                         tick: Callable[[], None] | None = None) -> EvalResult:
    """Scores ``pred_dir/<id>.png`` (class ids, at the ground truth's size) and, when present,
    ``pred_dir/keypoints.csv`` (LIP pose CSV format). Every id of the split must have a file."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise DataError(pred_dir, "predictions folder not found")
    missing = [r.id for r in reader.records if not (pred_dir / f"{r.id}.png").is_file()]
    if missing:
        raise DataError(pred_dir, f"{len(missing)} of {len(reader)} images have no prediction PNG (first: {missing[0]}.png)")
    keypoints = read_pose_csv(pred_dir / "keypoints.csv") if (pred_dir / "keypoints.csv").is_file() else None
    evaluator = Evaluator(pred_space or reader.label_space, reader.label_space, mapping,
                          ("parsing", "pose") if keypoints is not None else ("parsing",), has_pose=reader.has_pose)
    dataset = ParsingDataset(reader)
    space = pred_space or reader.label_space
    num_classes = label_space(space).num_classes
    for i, record in enumerate(reader.records):
        item = dataset[i]
        path = pred_dir / f"{record.id}.png"
        parsing = read_label(path).long()
        bad = parsing >= num_classes
        if bool(bad.any()):
            raise DataError(path, f"{int(bad.sum())} pixels have class values outside 0..{num_classes - 1} of the "
                                  f"{space} label space (first: {int(parsing[bad][0])}); a prediction assigns a "
                                  "class to every pixel")
        if tuple(parsing.shape) != tuple(item["parsing"].shape):
            raise DataError(path, f"prediction is {parsing.shape[1]}x{parsing.shape[0]} but the ground truth is "
                                  f"{item['parsing'].shape[1]}x{item['parsing'].shape[0]} (predictions must be at the "
                                  "original resolution)")
        pred = Prediction(parsing=parsing)
        if keypoints is not None:
            if record.id not in keypoints:
                raise DataError(pred_dir / "keypoints.csv", f"no row for image {record.id!r}")
            pred.keypoints = torch.from_numpy(keypoints[record.id][:, :2]).float()
        evaluator.update(pred, item)
        if tick:
            tick()
    protocol = {"source": "saved predictions", "resolution": "original", "test_time_augmentation": "unknown (as saved)"}
    return evaluator.result(_meta(name or pred_dir.name, reader, protocol, {"predictions": str(pred_dir)}))
