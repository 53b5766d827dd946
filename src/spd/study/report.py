"""``spd report --study OUT``: the tables and figures of a study written by ``benchmarks/study.py``
(one ``result.json`` per run under ``OUT/runs/<arm>/<variant>/seed<k>/``, the evaluations beside
it): mean ± sample standard deviation over seeds, differences to parsing alone paired by seed,
learning curves, the left/right classes by view and occlusion, and the task-gradient cosines."""

from __future__ import annotations

import contextlib
import json
import statistics
from collections.abc import Iterable
from pathlib import Path

from ..labels import label_space
from ..model.config import ABLATION
from ..ops.atomic import atomic_path, write_text
from ..ops.errors import InputError
from ..evaluation.report import mean_sd

SUBSETS = ("front", "back", "occluded", "not_occluded")


def study_variants(family: str) -> tuple[str, ...]:
    """The paper's ablation in one model family, parsing alone first (the reference of every Δ):
    ``"cpu"`` -> cpu_s, cpu_sp, cpu_sd, cpu_spd; ``"full"`` -> s, sp, sd, spd."""
    if family not in ("cpu", "full"):
        raise InputError(f"unknown model family {family!r}; known: cpu, full")
    return tuple(("cpu_" if family == "cpu" else "") + v for v in ABLATION)


def preset_family(preset: str) -> str:
    """The study family of a model preset: ``"cpu"`` for the CPU family's (cpu_*), else ``"full"``."""
    return "cpu" if preset.startswith("cpu_") else "full"


def runs_family(runs: list[dict]) -> tuple[str, ...]:
    """The variants of the family the study's runs belong to (benchmarks/study.py trains one
    family per study and refuses variants of the other)."""
    return study_variants(preset_family(runs[0]["variant"]))


@contextlib.contextmanager
def _named(path: Path):
    """A study record (or an evaluation it names) that cannot be read: an error naming the record."""
    try:
        yield
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{path}: not a study run record, or one of its evaluations is unreadable "
                         f"({type(err).__name__}: {err})") from None


def load_runs(out: Path) -> list[dict]:
    """Every finished run of the study, its evaluations read in (``run["scores"][milestone][data]``):
    from a study folder (``OUT/runs/<arm>/<variant>/seed<k>/result.json``), or else from a report
    folder's compacted records (``runs/<arm>_<variant>_seed<k>.json``, see :func:`run_record`)."""
    runs = []
    for path in sorted(Path(out).glob("runs/*/*/seed*/result.json")):
        with _named(path):
            run = json.loads(path.read_text(encoding="utf-8"))
            run["folder"] = path.parent
            run["scores"] = {tag: {name: json.loads((path.parent / rel).read_text(encoding="utf-8"))
                                   for name, rel in evaluation.items() if name not in ("step", "checkpoint")}
                             for tag, evaluation in run["evaluations"].items()}
        runs.append(run)
    if not runs:
        for path in sorted(Path(out).glob("runs/*_seed*.json")):
            with _named(path):
                run = json.loads(path.read_text(encoding="utf-8"))
                run["folder"] = path.parent
                run["scores"] = {tag: {k: v for k, v in ev.items() if k != "step"} for tag, ev in run["evaluations"].items()}
                run["evaluations"] = {tag: {"step": ev["step"]} for tag, ev in run["evaluations"].items()}
            runs.append(run)
    for run in runs:
        run["task_gradients"] = [defined_cosines(row) for row in run.get("task_gradients") or []]
    return runs


def defined_cosines(row: dict) -> dict:
    """A gradient measurement without the cosines that involve a zero gradient (a batch without
    parsing labels under scarce labels): those are undefined, not "no interference". Logs written
    before the callback left them out have them as 0."""
    zero = {key.removeprefix("norm/") for key, value in row.items() if key.startswith("norm/") and value == 0}
    if "parsing" in zero:
        return {k: v for k, v in row.items() if not k.startswith("cos/")}
    return {k: v for k, v in row.items() if not (k.startswith("cos/") and k.removeprefix("cos/") in zero)}


def left_right_classes(space: str = "lip") -> list[str]:
    """The classes of the label space's left/right pairs (arms, legs, shoes)."""
    s = label_space(space)
    return [s.classes[i] for pair in s.flip_pairs for i in pair]


def _mean_sd(values: Iterable[float | None]) -> str:
    """The study's tables give one decimal."""
    return mean_sd(values, 1)


def _metric(doc: dict | None, key: str) -> float | None:
    if not doc:
        return None
    if key == "miou":
        return (doc.get("parsing") or {}).get("miou")
    if key == "pckh":
        return ((doc.get("pose") or {}).get("pckh") or {}).get("Total")
    if key == "part_miou":
        return (doc.get("densepose") or {}).get("part_miou")
    if key == "lr_iou":
        ious = (doc.get("parsing") or {}).get("iou") or {}
        values = [ious.get(c) for c in left_right_classes()]
        values = [v for v in values if v is not None]
        return statistics.mean(values) if values else None
    raise KeyError(key)


def _select(runs: list[dict], arm: str, variant: str) -> list[dict]:
    return sorted((r for r in runs if r["arm"] == arm and r["variant"] == variant), key=lambda r: r["seed"])


def _paired(runs: list[dict], arm: str, variant: str, reference: list[dict], tag: str, data: str) -> str:
    """The difference to the reference variant, seed by seed: mean ± sd (n)."""
    ours = {r["seed"]: _metric(r["scores"][tag].get(data), "miou") for r in _select(runs, arm, variant)}
    theirs = {r["seed"]: _metric(r["scores"][tag].get(data), "miou") for r in reference}
    diffs = [ours[s] - theirs[s] for s in sorted(set(ours) & set(theirs)) if ours[s] is not None and theirs[s] is not None]
    if not diffs:
        return "–"
    sign = "+" if statistics.mean(diffs) >= 0 else ""
    return f"{sign}{_mean_sd(diffs)} ({len(diffs)})"


def main_table(runs: list[dict], arm: str = "main", variants: Iterable[str] | None = None, reference_arm: str = "main",
               label: str = "") -> list[str]:
    """The scores table of ``arm``'s variants (default: the family's four); ``label`` (when given)
    names the rows instead of the variant. Δ: against parsing alone of ``reference_arm``."""
    family = runs_family(runs)
    variants, name = variants or family, family[0]
    reference = _select(runs, reference_arm, name)
    lines = [f"| variant | seeds | schedule point | A val mIoU | Δ vs {name} (A) | B shared mIoU | Δ vs {name} (B) | "
             "A held-out mIoU | PCKh | part mIoU |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for variant in variants:
        members = _select(runs, arm, variant)
        if not members:
            continue
        for tag in ("quarter", "final"):
            steps = {r["evaluations"][tag]["step"] for r in members}
            scores = [r["scores"][tag] for r in members]
            lines.append(f"| {label or variant} | {len(members)} | {tag} (step {', '.join(map(str, sorted(steps)))}) | "
                         f"{_mean_sd(_metric(s.get('A_val'), 'miou') for s in scores)} | "
                         f"{_paired(runs, arm, variant, reference, tag, 'A_val') if variant != name or arm != reference_arm else ''} | "
                         f"{_mean_sd(_metric(s.get('B_shared'), 'miou') for s in scores)} | "
                         f"{_paired(runs, arm, variant, reference, tag, 'B_shared') if variant != name or arm != reference_arm else ''} | "
                         f"{_mean_sd(_metric(s.get('A_heldout'), 'miou') for s in scores)} | "
                         f"{_mean_sd(_metric(s.get('A_val'), 'pckh') for s in scores)} | "
                         f"{_mean_sd(_metric(s.get('A_val'), 'part_miou') for s in scores)} |")
    return lines


def side_scores(doc: dict | None, space: str = "lip") -> tuple[float, float] | None:
    """(wrong side %, side-blind IoU %) of the left/right pairs, from a confusion matrix: the share of
    the limbs' correctly found pixels given the other side's class, and the IoU of each pair merged
    into one class (arm, leg, shoe), averaged over the pairs. A compacted record (``run_record``) keeps
    the two numbers under ``parsing.side`` in place of the matrix."""
    parsing = (doc or {}).get("parsing") or {}
    if parsing.get("side"):
        return parsing["side"]["wrong_side"], parsing["side"]["side_blind_iou"]
    conf, labels = parsing.get("confusion_matrix"), label_space(space)
    if not conf or len(conf) != labels.num_classes:  # another space (B's shared classes)
        return None
    pairs = labels.flip_pairs
    wrong, merged = [], []
    for left, right in pairs:
        same = conf[left][left] + conf[right][right]
        swapped = conf[left][right] + conf[right][left]
        if same + swapped:
            wrong.append(100.0 * swapped / (same + swapped))
        found = same + swapped
        truth = sum(conf[left]) + sum(conf[right])
        predicted = sum(row[left] + row[right] for row in conf)
        if truth + predicted - found:
            merged.append(100.0 * found / (truth + predicted - found))
    if not wrong or not merged:
        return None
    return statistics.mean(wrong), statistics.mean(merged)


def side_table(runs: list[dict], arm: str = "main") -> list[str]:
    lines = ["Where the left/right classes go wrong, held-out domain A, final checkpoints: the share of the limbs' "
             "found pixels labelled with the other side (wrong side), and the IoU of each left/right pair merged "
             "into one class (side-blind), mean ± sd over seeds:", "",
             "| variant | front: wrong side | front: side-blind IoU | back: wrong side | back: side-blind IoU |",
             "|---|---:|---:|---:|---:|"]
    for variant in runs_family(runs):
        members = _select(runs, arm, variant)
        if not members:
            continue
        cells = []
        for subset in ("front", "back"):
            scores = [side_scores(_full_subset(r, subset)) for r in members]
            cells += [_mean_sd(s[0] for s in scores if s), _mean_sd(s[1] for s in scores if s)]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def view_table(runs: list[dict], arm: str = "main") -> list[str]:
    """Pose and DensePose of the multi-task variants on front- and back-view people: whether the
    auxiliary branches themselves know the person's left from right when the person faces away."""
    lines = ["The auxiliary tasks by view, held-out domain A, final checkpoints, mean ± sd over seeds:", "",
             "| variant | front: PCKh | back: PCKh | front: part mIoU | back: part mIoU |", "|---|---:|---:|---:|---:|"]
    for variant in runs_family(runs)[1:]:
        members = _select(runs, arm, variant)
        if not members:
            continue
        cells = [_mean_sd(_metric(_full_subset(r, subset), key) for r in members)
                 for key in ("pckh", "part_miou") for subset in ("front", "back")]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def _full_subset(run: dict, subset: str) -> dict | None:
    """A subset's evaluation of the held-out set at the final checkpoint (with its confusion matrix)."""
    return ((run["scores"]["final"].get("A_heldout") or {}).get("subsets") or {}).get(subset)


def subset_table(runs: list[dict], arm: str = "main") -> list[str]:
    classes = left_right_classes()
    lines = [f"Mean IoU of the left/right classes ({', '.join(classes)}) and mIoU, by subset of the held-out domain A "
             "images, final checkpoints, mean ± sd over seeds:", "",
             "| variant | " + " | ".join(f"{s} L/R IoU | {s} mIoU" for s in SUBSETS) + " |",
             "|---|" + "---:|" * (2 * len(SUBSETS))]
    for variant in runs_family(runs):
        members = _select(runs, arm, variant)
        if not members:
            continue
        cells = []
        for subset in SUBSETS:
            docs = [_full_subset(r, subset) for r in members]
            cells += [_mean_sd(_metric(d, "lr_iou") for d in docs), _mean_sd(_metric(d, "miou") for d in docs)]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    sizes = next((r["scores"]["final"]["A_heldout"].get("subsets") for r in runs if "A_heldout" in r["scores"]["final"]), {})
    if sizes:
        lines += ["", "Images per subset: " + ", ".join(f"{k} {v['meta']['images']}" for k, v in sizes.items())]
    return lines


def balance_rows(runs: list[dict]) -> list[str]:
    spd = runs_family(runs)[-1]
    lines = main_table(runs, "balance", (spd,), label=f"{spd}, uncertainty weighting")[2:]
    weights = []
    for run in _select(runs, "balance", spd):
        if run.get("learned_weights"):
            last = run["learned_weights"][-1]
            weights.append(", ".join(f"{k.removeprefix('train/weight_')} {v:.3g}" for k, v in last.items() if k != "step"))
    if weights:
        lines += ["", "Learned task weights at the end (exp(-s)), per seed: " + "; ".join(weights)]
    return lines


def seed_curves(members: list[dict], key: str) -> tuple[list[float], list[list[float]]]:
    """(step of each epoch's end, mean over the runs; [run][epoch] values of ``key``) over the
    epochs every run logged. Seeds are matched by epoch, not step: an epoch's last step may differ
    by one between runs (runs resumed before the fix of docs/changelog.md)."""
    rows = [{row["epoch"]: row for row in r["curve"] if key in row} for r in members]
    epochs = sorted(set.intersection(*(set(by_epoch) for by_epoch in rows)))
    steps = [statistics.mean(by_epoch[e]["step"] for by_epoch in rows) for e in epochs]
    return steps, [[by_epoch[e][key] for e in epochs] for by_epoch in rows]


def curves_figure(runs: list[dict], path: Path, arm: str = "main", key: str = "val/miou") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for variant in runs_family(runs):
        members = [r for r in _select(runs, arm, variant) if r.get("curve")]
        if not members:
            continue
        steps, values = seed_curves(members, key)
        values = np.array(values)
        mean = values.mean(0)
        ax.plot(steps, mean, label=f"{variant} ({len(members)} seed{'s' if len(members) > 1 else ''})")
        if len(members) > 1:
            sd = values.std(0, ddof=1)
            ax.fill_between(steps, mean - sd, mean + sd, alpha=0.2)
    ax.set_xlabel(f"training step (batch {runs[0]['batch_size']})")
    ax.set_ylabel("A val mIoU (%), one scale, no mirror")
    ax.set_title(f"learning curves ({arm}): mean ± sd over seeds", fontsize=9)
    if ax.lines:  # runs shorter than an epoch have no validation yet
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def interference_figure(runs: list[dict], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in runs if r.get("task_gradients")]
    if not measured:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, task in zip(axes, ("pose", "densepose")):
        for run in measured:
            rows = [row for row in run["task_gradients"] if f"cos/{task}" in row]
            if rows:
                ax.plot([row["step"] for row in rows], [row[f"cos/{task}"] for row in rows], marker=".",
                        label=f"{run['variant']} ({run['arm']}, seed {run['seed']})")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("training step")
        ax.set_title(f"cos(parsing, {task}) on the shared trunk", fontsize=9)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("cosine of the gradients")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def interference_table(runs: list[dict]) -> list[str]:
    """Per measured run: the batches whose cosines are defined (a batch without parsing labels has
    none), the mean cosines over all of them and over each half, and the mean gradient norms over the
    same batches."""
    lines = ["| run | measurements | cos(parsing, pose): mean, first half / second half | cos(parsing, DensePose) | "
             "gradient norm, parsing : pose : DensePose (mean) |", "|---|---:|---|---|---|"]
    for run in runs:
        rows = [r for r in run.get("task_gradients") or [] if any(k.startswith("cos/") for k in r)]
        if not rows:
            continue
        half = len(rows) // 2

        def cos(task: str, part: list[dict]) -> str:
            values = [r[f"cos/{task}"] for r in part if f"cos/{task}" in r]
            return f"{statistics.mean(values):+.3f}" if values else "–"

        norms = {t: statistics.mean(r[f"norm/{t}"] for r in rows) for t in ("parsing", "pose", "densepose")
                 if all(f"norm/{t}" in r for r in rows)}
        lines.append(f"| {run['variant']} ({run['arm']}, seed {run['seed']}) | {len(rows)} | "
                     f"{cos('pose', rows)}: {cos('pose', rows[:half])} / {cos('pose', rows[half:])} | "
                     f"{cos('densepose', rows)}: {cos('densepose', rows[:half])} / {cos('densepose', rows[half:])} | "
                     + " : ".join(f"{norms[t]:.3g}" if t in norms else "–" for t in ("parsing", "pose", "densepose")) + " |")
    return lines


def _compact(doc: dict | None) -> dict | None:
    """An evaluation without its confusion matrices (the scores, per class too, and the subsets'), with
    what the side table reads from a matrix kept as two numbers, so that the report rebuilds from it."""
    if doc is None:
        return None
    out = {k: v for k, v in doc.items() if k not in ("parsing", "subsets")}
    if doc.get("parsing"):
        out["parsing"] = {k: v for k, v in doc["parsing"].items() if k != "confusion_matrix"}
        side = side_scores(doc)
        if side:
            out["parsing"]["side"] = {"wrong_side": side[0], "side_blind_iou": side[1]}
    if doc.get("subsets"):
        out["subsets"] = {k: _compact(v) for k, v in doc["subsets"].items()}
    return out


def run_record(run: dict) -> dict:
    """One run's result, its evaluations inlined without confusion matrices: what a results folder keeps."""
    keep = {k: v for k, v in run.items() if k not in ("folder", "scores", "evaluations")}
    keep["evaluations"] = {tag: {"step": run["evaluations"][tag]["step"],
                                 **{name: _compact(doc) for name, doc in scores.items()}}
                           for tag, scores in run["scores"].items()}
    return keep


def write_study_report(out: Path | str, report_dir: Path | str | None = None,
                       pending: list[str] | None = None) -> list[Path]:
    """Writes ``report_dir`` (default ``OUT/report``): ``study.md``, ``curves.png``,
    ``interference.png``, ``study.json`` (the study's settings) and
    ``runs/<arm>_<variant>_seed<k>.json`` (each run's result with its scores, without confusion
    matrices), from which ``spd report --study REPORT_DIR`` makes the same report again. ``pending``:
    planned runs that are not finished (the report then says it is partial). Returns the files
    written."""
    out = Path(out)
    report_dir = Path(report_dir) if report_dir else out / "report"
    runs = load_runs(out)
    if not runs:
        raise InputError(f"{out}: no finished study runs (OUT/runs/<arm>/<variant>/seed<k>/result.json, or a "
                         "report's runs/<arm>_<variant>_seed<k>.json)")
    settings = json.loads((out / "study.json").read_text(encoding="utf-8")) if (out / "study.json").is_file() else {}
    written = [curves_figure(runs, report_dir / "curves.png")]
    figure = interference_figure(runs, report_dir / "interference.png")
    written += [figure] if figure else []
    first, family = runs[0], runs_family(runs)
    precision = first["config"]["train"]["precision"]
    recipe = f"the recipe of {settings['recipe_file']}" if settings.get("recipe_file") else "the demo's recipe"
    train_s = [r["timing"]["train_wall_s_this_call"] for r in runs if not r["timing"].get("resumed")]
    partial = ([f"**Partial report**: {len(pending)} planned run(s) not finished when it was written "
                f"({', '.join(pending)}).", ""] if pending else [])
    text = ["# Study: does SPD help?", "", *partial,
            f"{len(runs)} finished runs; every run {settings.get('steps', first['steps'])} steps of batch "
            f"{first['batch_size']} on {first['train_images']} training images with {recipe}"
            f"{'' if precision == '32-true' else ', ' + precision}; machine: "
            f"{first['machine']}; training wall time per uninterrupted run "
            f"{_mean_sd([s / 60 for s in train_s])} min.", "",
            "## In domain and across domains (equal steps, equal schedule)", "",
            *main_table(runs), "",
            f"Δ: the difference to {family[0]} of the same seed, mean ± sd over seeds (number of pairs).", "",
            "## Left / right classes by view and occlusion", "", *subset_table(runs), "", *side_table(runs), "", *view_table(runs), "",
            *(["## Scarce parsing labels", "",
               f"Parsing labels on {settings.get('parsing_fraction', '?')} of the training images, pose and DensePose "
               f"on all; Δ against {family[0]} on the same scarce labels.", "",
               *main_table(runs, "scarce", (family[0], family[-1]), reference_arm="scarce"), ""]
              if any(r["arm"] == "scarce" for r in runs) else []),
            *(["## Loss balancing: uncertainty weighting", "",
               *main_table(runs, "main", (family[-1],), label=f"{family[-1]}, fixed weights"), *balance_rows(runs), ""]
              if any(r["arm"] == "balance" for r in runs) else []),
            "## Interference: task gradients on the shared trunk", "", *interference_table(runs), "",
            "Figures: `curves.png` (validation mIoU during training), `interference.png` (gradient cosines)."]
    path = report_dir / "study.md"
    write_text(path, "\n".join(text) + "\n")
    if settings:  # with the runs' records, the report folder rebuilds this report by itself
        write_text(report_dir / "study.json", json.dumps(settings, indent=1) + "\n")
    for run in runs:
        name = f"{run['arm']}_{run['variant']}_seed{run['seed']}.json"
        write_text(report_dir / "runs" / name, json.dumps(run_record(run), indent=1) + "\n")
    return [path, *written]
