"""Does multi-task learning help? The SPD paper's ablation on synthetic data, where every label is
exact: the CPU family's ``cpu_s`` (parsing only), ``cpu_sp`` (+ pose), ``cpu_sd`` (+ DensePose) and
``cpu_spd`` (all three), each trained from scratch on synthetic domain A with the same CPU-second
budget, for several seeds, with all of A's training images and with a small subset of them, then
evaluated with the official protocol on A's val split (in-domain) and on domain B through the
LIP-ATR shared classes (cross-domain).

    python benchmarks/ablation_study.py --out runs/study [--budget 600] [--seeds 0 1 2] [--small 300]

Resumable: every (setting, variant, seed) writes ``OUT/<setting>/<variant>/seed<k>/{A,B}/metrics.json``
(the format of ``spd evaluate``) and is skipped when both exist. At the end, and whenever
``--report-only`` is given, ``spd report`` turns them into ``OUT/report_<setting>_{A,B}/`` (one row per
variant with the mean and spread over seeds, and per-class figures), and ``OUT/study_<setting>.png``
shows mIoU per variant, in-domain beside cross-domain, with the spread over seeds.

Training is bench_learning.py's (the demo's augmentation, AdamW with warm-up and a poly schedule
over the budget, CPU seconds of this process, data loading included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_learning import build, train_for  # noqa: E402

from spd.config import load_config  # noqa: E402
from spd.data.detect import open_dataset  # noqa: E402
from spd.data.synthetic import SynthSpec, generate  # noqa: E402
from spd.engine.evaluate import evaluate_model  # noqa: E402
from spd.engine.evaluator import write_result  # noqa: E402
from spd.engine.report import write_report  # noqa: E402
from spd.labels import load_mapping  # noqa: E402

VARIANTS = ["cpu_s", "cpu_sp", "cpu_sd", "cpu_spd"]


def run_dir(out: Path, setting: str, variant: str, seed: int) -> Path:
    return out / setting / variant / f"seed{seed}"


def done(folder: Path) -> bool:
    return all((folder / d / "metrics.json").is_file() for d in ("A", "B"))


def check_same_study(out: Path, study: dict) -> None:
    """Resuming must not mix runs of different recipes: the first call records the study's
    settings (the resolved demo recipe, budget, data) in OUT/study.json, later calls must match."""
    record = out / "study.json"
    if not record.is_file():
        if any(out.glob("*/*/seed*/A/metrics.json")):
            raise SystemExit(f"{out} holds runs of a study whose recipe was not recorded; use a new --out")
        record.write_text(json.dumps(study, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return
    recorded = json.loads(record.read_text(encoding="utf-8"))
    changed = [key for key in sorted(set(study) | set(recorded)) if study.get(key) != recorded.get(key)]
    if changed:
        raise SystemExit(f"{out} holds a study made with other settings ({', '.join(changed)} differ from "
                         f"{record}); use a new --out, or the settings it was made with")


def run_one(variant: str, seed: int, setting: str, train_reader, val_reader, b_reader, base_doc: dict,
            args: argparse.Namespace) -> dict:
    torch.manual_seed(seed)
    model, loss_fn, config = build(variant, [f"train.seed={seed}"], base_doc, train_reader)
    run = train_for(model, loss_fn, config, train_reader, args.budget, seed)
    model.eval()
    protocol = replace(config.eval, flip=False)
    folder = run_dir(args.out, setting, variant, seed)
    study = {"setting": setting, "seed": seed, "budget_cpu_s": args.budget, "train_images": len(train_reader), **run}
    for tag, reader, mapping in (("A", val_reader, None), ("B", b_reader, load_mapping("shared"))):
        result = evaluate_model(model, reader, protocol, mapping, name=variant, num_workers=0,
                                source={"model": variant, "study": study})
        write_result(result, folder / tag, None if mapping else reader.label_space)
    return study


def miou_figure(out: Path, setting: str) -> Path:
    """mIoU per variant, mean and standard deviation over seeds, in-domain (A) beside cross-domain (B)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    variants = [v for v in VARIANTS if (out / setting / v).is_dir()]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for offset, tag, label in ((-0.2, "A", "domain A val (in-domain)"), (0.2, "B", "domain B, shared classes")):
        scores = [[json.loads(f.read_text())["parsing"]["miou"] or 0.0
                   for f in sorted((out / setting / v).glob(f"seed*/{tag}/metrics.json"))] for v in variants]
        ax.bar(np.arange(len(variants)) + offset, [np.mean(s) for s in scores], 0.4, label=label,
               yerr=[np.std(s, ddof=1) if len(s) > 1 else 0.0 for s in scores], capsize=3)
    ax.set_xticks(np.arange(len(variants)), variants)
    ax.set_ylabel("mIoU (%)")
    ax.set_title(f"{setting}: mean ± sd over seeds", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / f"study_{setting}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(out: Path) -> list[Path]:
    written = []
    for setting in sorted(p.name for p in out.iterdir() if p.is_dir() and p.name not in ("data",)
                          and not p.name.startswith("report_")):
        for tag in ("A", "B"):
            files = sorted((out / setting).glob(f"*/seed*/{tag}/metrics.json"))
            if files:
                written.append(write_report(files, out / f"report_{setting}_{tag}")["markdown"])
        if any((out / setting).glob("*/seed*/A/metrics.json")):
            written.append(miou_figure(out, setting))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=600.0, help="CPU seconds of training per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--small", type=int, default=300, help="training images of the small-data setting (0: none)")
    parser.add_argument("--num", type=int, default=700, help="synthetic domain A images (train + val)")
    parser.add_argument("--cross", type=int, default=100, help="domain B images for the cross-domain score")
    parser.add_argument("--size", type=int, default=None, help="image size (default: the demo's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        torch.set_num_threads(args.threads)
        base, base_doc = load_config(Path(str(resources.files("spd.config").joinpath("demo.yaml"))))
        synth = base.data.synthetic
        size = args.size or synth.size
        a_root, b_root = args.out / "data" / f"synthetic_A_{args.num}_{size}", args.out / "data" / f"synthetic_B_{args.cross}_{size}"
        generate(a_root, SynthSpec(num=args.num, domain="A", seed=synth.seed, size=size, val_fraction=synth.val_fraction))
        generate(b_root, SynthSpec(num=args.cross, domain="B", seed=synth.seed, size=size, val_fraction=1.0))
        if args.size:
            base_doc = {**base_doc, "augment": {**base_doc["augment"], "size": [size, round(size * 0.8)]},
                        "eval": {**base_doc["eval"], "input_size": [size, round(size * 0.8)]}}
        full, val_reader, b_reader = open_dataset(a_root, "train"), open_dataset(a_root, "val"), open_dataset(b_root, "val")
        settings = {"full": full}
        if args.small:
            small = open_dataset(a_root, "train")
            small.records = small.records[:args.small]  # the first N of the seeded generation: the same for every run
            settings[f"small{args.small}"] = small
        check_same_study(args.out, {"recipe": base_doc, "budget": args.budget, "num": args.num, "cross": args.cross,
                                    "size": size, "small": args.small})
        log = args.out / "runs.jsonl"
        for setting, reader in settings.items():
            for seed in args.seeds:
                for variant in args.variants:
                    if done(run_dir(args.out, setting, variant, seed)):
                        continue
                    start = time.perf_counter()
                    study = run_one(variant, seed, setting, reader, val_reader, b_reader, base_doc, args)
                    entry = {"variant": variant, **study, "wall_s_with_eval": round(time.perf_counter() - start, 1)}
                    with open(log, "a", encoding="utf-8") as f:
                        f.write(json.dumps(entry) + "\n")
                    print(json.dumps(entry), flush=True)
    for path in report(args.out):
        print(f"written: {path}")


if __name__ == "__main__":
    main()
