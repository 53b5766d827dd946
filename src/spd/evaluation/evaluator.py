"""Accumulates every metric of one evaluation over predictions, whatever produced them (a model,
or saved files of any method), and writes the results as JSON, Markdown and a bar chart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from ..ops.atomic import atomic_path, write_text
from ..labels import LabelMapping, label_space
from ..inference import Prediction
from ..tasks import Scoring, get_task, task_names
from ..tasks.registry import BUILT_IN


class EvalResult:
    """Scores in percent (None = undefined, e.g. a class absent from both sides) and the settings
    that produced them. ``scores[task]``: each scored task's section (its metric's result); the
    sections read as attributes too (``result.parsing``: None where the task was not scored).
    ``subsets``: the same metrics on subsets of the images."""

    def __init__(self, meta: dict[str, Any], scores: dict[str, dict] | None = None,
                 subsets: dict[str, "EvalResult"] | None = None, **sections: dict | None):
        self.meta = meta
        self.scores = {k: v for k, v in {**(scores or {}), **sections}.items() if v is not None}
        self.subsets = subsets or {}

    def __getattr__(self, name: str):
        if name in ("meta", "scores", "subsets"):
            raise AttributeError(name)
        if name in task_names():
            return self.scores.get(name)
        raise AttributeError(f"EvalResult has no attribute {name!r}")

    def to_json(self) -> dict[str, Any]:
        out = {"meta": self.meta, **{t: self.scores.get(t) for t in BUILT_IN}, **self.scores}
        if self.subsets:
            out["subsets"] = {k: v.to_json() for k, v in self.subsets.items()}
        return out

    def markdown(self) -> str:
        m = self.meta
        lines = [f"# Evaluation: {m.get('name', '')}", "",
                 f"data: `{m['data']['root']}` split `{m['data']['split']}` ({m['images']} images, "
                 f"{m['data']['label_space']} labels)", f"protocol: {json.dumps(m['protocol'])}"]
        src = m.get("source", {})
        what = src.get("checkpoint") or src.get("predictions") or src.get("model", "")
        steps = ", ".join(f"{k} {src[k]}" for k in ("step", "epoch") if k in src)
        lines.append(f"source: `{what}`" + (f" ({steps})" if steps else "")
                     + (f"; spd {m['spd_version']}, {m['date']}" if "spd_version" in m else ""))
        if m.get("mapping"):
            lines.append(f"label mapping: {m['mapping']['name']} ({', '.join(m['mapping']['classes'])})")
        for task, section in self.scores.items():
            lines += get_task(task).markdown(section)
        return "\n".join(lines) + "\n"


class Evaluator:
    """``update(prediction, targets)`` per image; ``result()`` at the end. Each of ``tasks`` is
    scored by its own metric (:meth:`spd.tasks.Task.metric`), where the data allow it.

    ``mapping`` evaluates across label spaces (e.g. a LIP model on ATR): both the prediction and
    the ground truth are mapped to the mapping's classes; a predicted class with no counterpart
    counts as wrong, a ground-truth class with none is ignored.
    """

    def __init__(self, model_space: str, data_space: str, mapping: LabelMapping | None = None,
                 tasks: tuple[str, ...] = BUILT_IN, has_pose: bool = True,
                 densepose_truth: str = "synthetic ground truth"):
        scoring = Scoring(model_space, data_space, mapping, has_pose, densepose_truth)
        made = {t: get_task(t).metric(scoring) for t in tasks}
        self.task_metrics = {t: m for t, m in made.items() if m is not None}
        self.mapping = mapping
        self.classes = mapping.classes if mapping else label_space(data_space).classes
        self.images = 0
        self.device = torch.device("cpu")

    def metrics(self) -> list:
        """The torchmetrics states of every task's metric."""
        return [state for m in self.task_metrics.values() for state in m.states]

    def to(self, device: torch.device | str) -> "Evaluator":
        """Keeps the metric states (and the mapping's tables) on ``device``: predictions made there are
        scored there, without a copy to the host per image."""
        self.device = torch.device(device)
        for m in self.task_metrics.values():
            for state in m.states:
                state.to(device)
            if hasattr(m, "to"):
                m.to(device)
        return self

    def update(self, prediction: Prediction, targets: dict[str, Any]) -> None:
        self.images += 1
        device = self.device

        def here(t: torch.Tensor) -> torch.Tensor:
            # Asynchronous only towards a GPU: a non-blocking copy from a GPU into host memory may be
            # read before it has arrived (evaluate_model's evaluators live on the CPU).
            return t.to(device, non_blocking=device.type == "cuda")

        for metric in self.task_metrics.values():
            metric.update(prediction, targets, here)

    def result(self, meta: dict[str, Any]) -> EvalResult:
        meta = {**meta, "images": self.images}
        if self.mapping:
            meta["mapping"] = {"name": self.mapping.name, "classes": list(self.classes)}
        return EvalResult(meta, {t: m.result() for t, m in self.task_metrics.items()})

    def logged(self, result: EvalResult) -> dict[str, float]:
        """What validation logs of a result: each scored task's values."""
        return {k: v for t, section in result.scores.items() for k, v in get_task(t).logged(section).items()}


def bar_chart(result: EvalResult, path: Path | str, space: str | None = None) -> Path:
    """Per-class IoU as horizontal bars in the label space's colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    iou = result.parsing["iou"]
    names = list(iou)
    values = [v if v is not None else 0.0 for v in iou.values()]
    colours = None
    if space and not result.meta.get("mapping"):
        colours = label_space(space).palette_array()[: len(names)] / 255.0
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(names) + 1.2))
    ax.barh(range(len(names)), values, color=colours, edgecolor="black", linewidth=0.5)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("IoU (%)")
    ax.set_title(f"{result.meta.get('name', '')}: mIoU {result.parsing['miou']}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def _finite(value):
    """NaN / inf (a metric undefined on this data) -> null: bare NaN is not valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_result(result: EvalResult, out_dir: Path | str, space: str | None = None) -> dict[str, Path]:
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "metrics.json", "markdown": out_dir / "metrics.md"}
    write_text(paths["json"], json.dumps(_finite(result.to_json()), indent=2, allow_nan=False))
    write_text(paths["markdown"], result.markdown())
    if result.parsing:
        paths["chart"] = bar_chart(result, out_dir / "per_class_iou.png", space)
        if "confusion_matrix" in result.parsing:
            paths["confusion"] = out_dir / "confusion_matrix.csv"
            write_text(paths["confusion"], confusion_csv(result))
    return paths


def confusion_csv(result: EvalResult) -> str:
    """Pixel counts: one row per ground-truth class, one column per predicted class (and one for
    predictions outside the classes)."""
    classes = list(result.parsing["iou"])
    rows = [",".join(["ground truth \\ prediction"] + classes + ["(no class)"])]
    rows += [",".join([c] + [str(n) for n in counts]) for c, counts in zip(classes, result.parsing["confusion_matrix"])]
    return "\n".join(rows) + "\n"
