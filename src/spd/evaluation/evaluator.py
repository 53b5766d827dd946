"""Accumulates every metric of one evaluation over predictions, whatever produced them (a model,
or saved files of any method), and writes the results as JSON, Markdown and a bar chart."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..ops.atomic import atomic_path, write_text
from ..labels import LabelMapping, keypoint_space, label_space
from ..metrics import PCKh, ConfusionMatrix, PerImageIoU, UVError
from ..inference import Prediction


def _cell(x) -> str:
    """A table cell: "–" for a metric that is undefined here (a class absent from both sides)."""
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else str(x)


def _round(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(100.0 * x, 2)


@dataclass
class EvalResult:
    """Scores in percent (None = undefined, e.g. a class absent from both sides) and the
    settings that produced them."""

    meta: dict[str, Any]
    parsing: dict[str, Any] | None = None
    pose: dict[str, Any] | None = None
    densepose: dict[str, Any] | None = None
    subsets: dict[str, "EvalResult"] = field(default_factory=dict)  # the same metrics on subsets of the images

    def to_json(self) -> dict[str, Any]:
        out = {"meta": self.meta, "parsing": self.parsing, "pose": self.pose, "densepose": self.densepose}
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
        if self.parsing:
            p = self.parsing
            lines += ["", "| pixel acc | mean acc | mIoU | fwIoU | per-image mIoU (non-standard) |", "|---:|---:|---:|---:|---:|",
                      f"| {_cell(p['pixel_accuracy'])} | {_cell(p['mean_accuracy'])} | {_cell(p['miou'])} | {_cell(p['fwiou'])} | "
                      f"{_cell(p['per_image_miou_nonstandard'])} |", "", "| class | IoU | accuracy |", "|---|---:|---:|"]
            lines += [f"| {c} | {_cell(p['iou'][c])} | {_cell(p['accuracy'][c])} |" for c in p["iou"]]
        if self.pose:
            names = list(self.pose["pckh"])
            lines += ["", "PCKh@0.5", "", "| " + " | ".join(names) + " |", "|" + "---:|" * len(names),
                      "| " + " | ".join(str(_cell(self.pose["pckh"][n])) for n in names) + " |"]
        if self.densepose:
            d = self.densepose
            lines += ["", f"DensePose ({d['ground_truth']}): part mIoU {_cell(d['part_miou'])}, mean |U,V| error "
                          f"{_cell(d['uv_error'])} (on pixels whose part is right)"]
        return "\n".join(lines) + "\n"


class Evaluator:
    """``update(prediction, targets)`` per image; ``result()`` at the end.

    ``mapping`` evaluates across label spaces (e.g. a LIP model on ATR): both the prediction and
    the ground truth are mapped to the mapping's classes; a predicted class with no counterpart
    counts as wrong, a ground-truth class with none is ignored.
    """

    def __init__(self, model_space: str, data_space: str, mapping: LabelMapping | None = None,
                 pose: bool = True, densepose: bool = True, densepose_truth: str = "synthetic ground truth"):
        if mapping is None and model_space != data_space:
            raise ValueError(f"a {model_space} model on {data_space} data needs a label mapping (--map shared|super)")
        self.mapping = mapping
        self.classes = mapping.classes if mapping else label_space(data_space).classes
        self.pred_lut = torch.from_numpy(mapping.lut(model_space)).long() if mapping else None
        self.gt_lut = torch.from_numpy(mapping.lut(data_space)).long() if mapping else None
        k = len(self.classes)
        self.parsing, self.per_image = ConfusionMatrix(k), PerImageIoU(k)
        self.pckh = PCKh(keypoint_space()) if pose else None
        self.parts = ConfusionMatrix(25) if densepose else None
        self.uv = UVError() if densepose else None
        self.densepose_truth = densepose_truth
        self.images = 0

    def metrics(self) -> list:
        return [m for m in (self.parsing, self.per_image, self.pckh, self.parts, self.uv) if m is not None]

    def to(self, device: torch.device | str) -> "Evaluator":
        """Keeps the metric states (and the mapping's tables) on ``device``: predictions made there are
        scored there, without a copy to the host per image."""
        for m in self.metrics():
            m.to(device)
        if self.mapping:
            self.pred_lut, self.gt_lut = self.pred_lut.to(device), self.gt_lut.to(device)
        return self

    def update(self, prediction: Prediction, targets: dict[str, Any]) -> None:
        self.images += 1
        device = self.parsing.conf.device

        def here(t: torch.Tensor) -> torch.Tensor:
            # Asynchronous only towards a GPU: a non-blocking copy from a GPU into host memory may be
            # read before it has arrived (evaluate_model's evaluators live on the CPU).
            return t.to(device, non_blocking=device.type == "cuda")

        if prediction.parsing is not None and bool(targets["has_parsing"]):
            pred, gt = here(prediction.parsing).long(), here(targets["parsing"]).long()
            if self.mapping:
                pred, gt = self.pred_lut[pred.clamp(0, 255)], self.gt_lut[gt.clamp(0, 255)]
            self.parsing.update(pred, gt)
            self.per_image.update(pred, gt)
        if self.pckh is not None and prediction.keypoints is not None and bool(targets["has_pose"]):
            self.pckh.update(here(prediction.keypoints)[None], here(targets["keypoints"])[None])
        if self.parts is not None and prediction.dp_index is not None and bool(targets["has_densepose"]):
            pred_index, gt_index = here(prediction.dp_index).long(), here(targets["dp_index"]).long()
            self.parts.update(pred_index, gt_index)
            self.uv.update(pred_index, here(prediction.dp_uv), gt_index, here(targets["dp_uv"]),
                           here(targets["dp_uv_valid"]))

    def result(self, meta: dict[str, Any]) -> EvalResult:
        meta = {**meta, "images": self.images}
        if self.mapping:
            meta["mapping"] = {"name": self.mapping.name, "classes": list(self.classes)}
        out = EvalResult(meta=meta)
        if int(self.parsing.conf.sum()) > 0 or self._distributed():
            s = self.parsing.compute()
            out.parsing = {"pixel_accuracy": _round(s.pixel_accuracy), "mean_accuracy": _round(s.mean_accuracy),
                           "miou": _round(s.miou), "fwiou": _round(s.fwiou),
                           "per_image_miou_nonstandard": _round(self.per_image.compute()),
                           "iou": {c: _round(v) for c, v in zip(self.classes, s.iou)},
                           "accuracy": {c: _round(v) for c, v in zip(self.classes, s.accuracy)},
                           # rows: ground truth; columns: prediction, the last one for predictions in no class
                           "confusion_matrix": self.parsing.conf.long().tolist()}
        if self.pckh is not None and (int(self.pckh.counted.sum()) > 0 or self._distributed()):
            out.pose = {"pckh": {k: None if math.isnan(v) else round(v, 2) for k, v in self.pckh.compute().items()}}
        if self.parts is not None and (int(self.parts.conf.sum()) > 0 or self._distributed()):
            s = self.parts.compute()
            out.densepose = {"part_miou": _round(s.miou), "uv_error": round(self.uv.compute(), 4),
                             "ground_truth": self.densepose_truth}
        return out

    @staticmethod
    def _distributed() -> bool:
        return torch.distributed.is_available() and torch.distributed.is_initialized()


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
