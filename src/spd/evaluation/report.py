"""``spd report``: evaluation JSONs -> the paper-style comparison table (Markdown) and a figure."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from pathlib import Path

from ..ops.atomic import atomic_path, write_text
from ..ops.errors import InputError
from ..tasks import get_task, task_names


def load_results(paths: list[Path]) -> list[dict]:
    results = []
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"{path}: cannot read an evaluation JSON ({err})") from err
        if not isinstance(doc, dict) or "meta" not in doc or "parsing" not in doc:
            raise InputError(f"{path}: not an `spd evaluate` metrics.json (no 'meta' / 'parsing')")
        doc["meta"].setdefault("name", Path(path).parent.name)
        results.append(doc)
    return results


def _data(r: dict) -> str:
    d = r["meta"].get("data", {})
    return f"{Path(d.get('root', '?')).name}/{d.get('split', '?')}"


def _runs(results: list[dict]) -> list[list[dict]]:
    """Results of the same variant on the same data (e.g. several seeds) together, in first-seen order."""
    runs: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        runs.setdefault((r["meta"]["name"], _data(r)), []).append(r)
    return list(runs.values())


def mean_sd(values: Iterable[float | None], digits: int = 2) -> str:
    """One value, or the mean ± sample standard deviation of several (undefined ones, None or nan,
    left out); "–" when none is defined."""
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _class_table(results: list[dict]) -> list[str]:
    classes = list((results[0]["parsing"] or {}).get("iou", {}))
    runs = _runs(results)
    # Each task's columns (its declaration), the built-in ones always, a user's task where a result has it.
    columns = [(t, c) for t in task_names() if t in ("parsing", "pose", "densepose") or any(r.get(t) for r in results)
               for c in get_task(t).columns]
    header = ["variant", "data", "runs", *(c.header for _, c in columns)] + classes
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for members in runs:
        p = [r["parsing"] or {} for r in members]
        row = [members[0]["meta"]["name"], _data(members[0]), str(len(members)),
               *(mean_sd([c.value(r.get(t)) for r in members], c.digits) for t, c in columns)]
        row += [mean_sd([x.get("iou", {}).get(c) for x in p]) for c in classes]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _groups(results: list[dict]) -> dict[tuple[str, ...], list[dict]]:
    """Results by their class list (label space or cross-dataset mapping)."""
    groups: dict[tuple[str, ...], list[dict]] = {}
    for r in results:
        groups.setdefault(tuple((r["parsing"] or {}).get("iou", {})), []).append(r)
    return groups


def _group_name(members: list[dict]) -> str:
    mapping = members[0]["meta"].get("mapping")
    return mapping["name"] if mapping else members[0]["meta"]["data"]["label_space"]


def comparison_table(results: list[dict]) -> str:
    """Rows: variants; columns: pixel acc, mean acc, mIoU, PCKh, DensePose, then per-class IoU.
    Several results of one variant on the same data (seeds) make one row: mean ± standard deviation.
    Results over different class sets (e.g. a cross-dataset mapping) get a table each."""
    groups = _groups(results)
    lines: list[str] = []
    for members in groups.values():
        if len(groups) > 1:
            lines += ["", f"Classes: {_group_name(members)}", ""]
        lines += _class_table(members)
    protocols = {json.dumps(r["meta"].get("protocol"), sort_keys=True) for r in results}
    notes = ["", "All numbers in percent; mIoU is the official whole-set confusion-matrix mIoU."]
    if len(protocols) > 1:
        notes.append("Warning: the rows were evaluated with different protocols:")
        notes += [f"- {r['meta']['name']}: {json.dumps(r['meta'].get('protocol'))}" for r in results]
    else:
        notes.append(f"Protocol: {protocols.pop()}")
    return "\n".join(lines + notes) + "\n"


def comparison_figure(results: list[dict], path: Path) -> Path:
    """Per-class IoU bars of every result; one panel per class list, so that results in another
    label space (or under a mapping) keep their bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = list(_groups(results).items())
    widest = max(len(classes) for classes, _ in groups)
    fig, axes = plt.subplots(len(groups), 1, figsize=(max(6, 0.45 * widest + 2), 4 * len(groups)), squeeze=False)
    for ax, (classes, members) in zip(axes[:, 0], groups):
        runs = _runs(members)
        width = 0.8 / len(runs)
        for i, run in enumerate(runs):
            ious = np.array([[(r["parsing"] or {}).get("iou", {}).get(c) or 0.0 for c in classes] for r in run])
            spread = ious.std(axis=0, ddof=1) if len(run) > 1 else None
            ax.bar(np.arange(len(classes)) + i * width, ious.mean(axis=0), width, yerr=spread, capsize=2,
                   label=f"{run[0]['meta']['name']}, {_data(run[0])} ({mean_sd([(r['parsing'] or {}).get('miou') for r in run])})")
        ax.set_xticks(np.arange(len(classes)) + width * (len(runs) - 1) / 2, classes, rotation=60, ha="right")
        ax.set_ylabel("IoU (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"classes: {_group_name(members)}", fontsize=9)
        ax.legend(title="variant, data (mIoU)", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def write_report(paths: list[Path], out_dir: Path) -> dict[str, Path]:
    results = load_results(paths)
    if not results:
        raise InputError("no evaluation JSONs given")
    table = out_dir / "report.md"
    write_text(table, "# Comparison\n\n" + comparison_table(results))
    return {"markdown": table, "figure": comparison_figure(results, out_dir / "report.png")}
