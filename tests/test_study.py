"""The study (benchmarks/study.py) at toy size: every arm trains through the public API for a fixed
number of steps, keeps its quarter-schedule weights, is evaluated in and across domains and by
subset, resumes where it stopped, and ``spd report --study`` makes its tables and figures. Its
numbers are not checked here: they come from the study itself."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spd.cli.main import main
from spd.ops.locks import file_lock

STUDY = Path(__file__).parents[1] / "benchmarks" / "study.py"
pytestmark = pytest.mark.slow


def test_study_runs_resumes_and_reports(tmp_path):
    args = [sys.executable, str(STUDY), "--out", str(tmp_path), "--steps", "8", "--seeds", "0", "--variants", "cpu_spd",
            "--num", "24", "--cross", "4", "--heldout", "8", "--val-every", "1", "--grad-every", "4",
            "--workers", "0", "--threads", "2", "--device", "cpu"]
    first = subprocess.run(args, check=True, capture_output=True, text=True, timeout=900).stdout
    assert first.count('"arm"') == 3  # cpu_spd in each arm: main, scarce, balance
    run = json.loads((tmp_path / "runs" / "balance" / "cpu_spd" / "seed0" / "result.json").read_text())
    assert [run["evaluations"][t]["step"] for t in ("quarter", "final")] == [2, 8]
    assert run["curve"] and "val/miou" in run["curve"][-1]
    assert [r["step"] for r in run["task_gradients"]] == [0, 4] and "cos/pose" in run["task_gradients"][0]
    heldout = json.loads((tmp_path / "runs" / "main" / "cpu_spd" / "seed0" / "eval" / "final_A_heldout" /
                          "metrics.json").read_text())
    assert set(heldout["subsets"]) == {"front", "back", "occluded", "not_occluded"}
    assert sum(heldout["subsets"][k]["meta"]["images"] for k in ("front", "back")) == heldout["meta"]["images"] == 8
    scarce = (tmp_path / "runs" / "scarce" / "cpu_spd" / "seed0" / "config.yaml").read_text()
    assert "parsing_fraction: 0.2" in scarce and "precision: 32-true" in scarce
    # Done runs are skipped; a run without its result.json resumes from its checkpoint. While another
    # study process holds it, this one skips it and says that its report is partial.
    (tmp_path / "runs" / "main" / "cpu_spd" / "seed0" / "result.json").unlink()
    with file_lock(tmp_path / "runs" / "main" / "cpu_spd" / "seed0" / ".study.lock", wait=False) as lock:
        assert lock.held
        partial = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert partial.returncode == 0 and "the report is partial: 1 planned run(s)" in partial.stderr, partial.stderr
    assert "**Partial report**: 1 planned run(s) not finished when it was written (runs/main/cpu_spd/seed0)" in \
        (tmp_path / "report" / "study.md").read_text()
    again = subprocess.run(args, check=True, capture_output=True, text=True, timeout=900).stdout
    assert again.count('"arm"') == 1 and '"arm": "main"' in again
    assert json.loads((tmp_path / "runs" / "main" / "cpu_spd" / "seed0" / "result.json").read_text())["timing"]["resumed"]
    # Another schedule in the same folder would mix protocols in one table: refused, naming it.
    other = subprocess.run([*args[:5], "9", *args[6:]], capture_output=True, text=True, timeout=900)
    assert other.returncode != 0 and "steps" in other.stderr
    # (bf16 autocast is ~80x slower than float32 on CPUs without native bf16, so the runs train in float32)
    bf16 = subprocess.run([*args, "--precision", "bf16-mixed"], capture_output=True, text=True, timeout=900)
    assert bf16.returncode != 0 and "precision differ" in bf16.stderr
    assert main(["report", "--study", str(tmp_path), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "study.md").read_text()
    assert "| cpu_spd | 1 | final (step 8) |" in text and "## Left / right classes by view and occlusion" in text
    assert "demo's recipe; machine" in text
    assert "| variant | front: PCKh | back: PCKh | front: part mIoU | back: part mIoU |" in text
    assert (tmp_path / "rep" / "curves.png").is_file() and (tmp_path / "rep" / "interference.png").is_file()
    # The report folder alone (what the repository keeps) makes the same report again.
    assert main(["report", "--study", str(tmp_path / "rep"), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "study.md").read_text() == text


def test_bad_arguments_are_refused_before_anything_is_written(tmp_path):
    """``--steps 0`` was refused by the config after study.json and the data were written, which
    then locked the folder to 0 steps."""
    done = subprocess.run([sys.executable, str(STUDY), "--out", str(tmp_path / "study"), "--steps", "0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "argument --steps: must be >= 4, got 0" in done.stderr, done.stderr
    assert not (tmp_path / "study").exists()


def test_side_scores_count_swapped_limbs_and_side_blind_iou():
    """On a confusion matrix where every left arm is called right and every right arm left, the side
    is always wrong and the side-blind IoU is perfect; a correct matrix is the other way round."""
    from spd.study.report import side_scores
    from spd.labels import label_space

    space = label_space("lip")
    n = space.num_classes
    swapped = [[0] * (n + 1) for _ in range(n)]
    for left, right in space.flip_pairs:
        swapped[left][right] = swapped[right][left] = 10
    wrong, blind = side_scores({"parsing": {"confusion_matrix": swapped}})
    assert wrong == 100.0 and blind == 100.0
    correct = [[0] * (n + 1) for _ in range(n)]
    for left, right in space.flip_pairs:
        correct[left][left] = correct[right][right] = 10
        correct[left][0] = 10  # half of each left limb missed (predicted background)
    wrong, blind = side_scores({"parsing": {"confusion_matrix": correct}})
    assert wrong == 0.0 and abs(blind - 100 * 20 / 30) < 1e-9


def test_a_committed_run_record_keeps_the_side_scores():
    """The results folder keeps runs without confusion matrices; the side table must still rebuild
    from it, for the whole evaluation and for each subset."""
    from spd.study.report import _compact, side_scores
    from spd.labels import label_space

    space = label_space("lip")
    conf = [[0] * (space.num_classes + 1) for _ in range(space.num_classes)]
    for left, right in space.flip_pairs:
        conf[left][left], conf[left][right], conf[right][right], conf[left][0] = 30, 10, 40, 20
    doc = {"parsing": {"confusion_matrix": conf, "miou": 1.0}, "subsets": {"back": {"parsing": {"confusion_matrix": conf}}}}
    compact = _compact(doc)
    assert "confusion_matrix" not in compact["parsing"] and "confusion_matrix" not in compact["subsets"]["back"]["parsing"]
    assert side_scores(compact) == side_scores(doc) == side_scores(compact["subsets"]["back"]) != (0.0, 0.0)
    assert json.loads(json.dumps(compact)) == compact
    shared = {"parsing": {"confusion_matrix": [[1] * 17 for _ in range(16)]}}  # B's 16 shared classes
    assert side_scores(shared) is None and "side" not in _compact(shared)["parsing"]


def test_interference_table_counts_the_batches_with_a_cosine():
    """Under scarce labels some measured batches have no parsing label: they have no cosine, so they
    are not measurements and their zero parsing norm does not enter the mean norm."""
    from spd.study.report import defined_cosines, interference_table

    rows = [{"step": 0, "norm/parsing": 2.0, "norm/pose": 1.0, "norm/densepose": 1.0, "cos/pose": 0.5, "cos/densepose": 0.1},
            {"step": 250, "norm/parsing": 0.0, "norm/pose": 1.0, "norm/densepose": 1.0, "cos/pose": 0.0, "cos/densepose": 0.0},
            {"step": 500, "norm/parsing": 4.0, "norm/pose": 1.0, "norm/densepose": 1.0, "cos/pose": 0.3, "cos/densepose": -0.1}]
    run = {"variant": "cpu_spd", "arm": "scarce", "seed": 0, "task_gradients": [defined_cosines(r) for r in rows]}
    line = interference_table([run])[-1]
    assert line.startswith("| cpu_spd (scarce, seed 0) | 2 | +0.400: +0.500 / +0.300 |") and "| 3 : 1 : 1 |" in line


def test_cosine_with_a_zero_gradient_is_left_out():
    """A batch without parsing labels gives the parsing task a zero gradient: the cosine is undefined
    and is not written (nor read back from older logs) as 0, which would read as "no interference"."""
    import torch

    from spd.study.report import defined_cosines
    from spd.study.task_gradients import gradient_cosines

    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    out = gradient_cosines({"parsing": (w * 0).sum(), "pose": (w * w).sum(), "densepose": w[0] * 3}, [w])
    assert out["norm/parsing"] == 0 and "cos/pose" not in out and "cos/densepose" not in out
    out = gradient_cosines({"parsing": w.sum(), "pose": -w.sum(), "densepose": w[0] * 0}, [w])
    assert abs(out["cos/pose"] + 1) < 1e-6 and "cos/densepose" not in out
    old = {"step": 250, "norm/parsing": 0.0, "norm/pose": 0.1, "cos/pose": 0.0}
    assert defined_cosines(old) == {"step": 250, "norm/parsing": 0.0, "norm/pose": 0.1}
    kept = {"step": 0, "norm/parsing": 1.0, "norm/pose": 0.1, "cos/pose": 0.3}
    assert defined_cosines(kept) == kept


def test_learning_curves_of_seeds_are_matched_by_epoch():
    from spd.study.report import seed_curves

    a = {"curve": [{"step": 295, "epoch": 1, "val/miou": 10.0}, {"step": 591, "epoch": 3, "val/miou": 20.0}]}
    b = {"curve": [{"step": 295, "epoch": 1, "val/miou": 12.0}, {"step": 592, "epoch": 3, "val/miou": 22.0},
                   {"step": 888, "epoch": 5, "val/miou": 30.0}]}
    steps, values = seed_curves([a, b], "val/miou")
    assert steps == [295, 591.5] and values == [[10.0, 20.0], [12.0, 22.0]]


def test_a_study_of_the_full_size_family_names_its_variants(tmp_path):
    """A study of the full-size presets (``--recipe configs/study_full.yaml``, run on a GPU) is the
    CPU study with other names: its report, made from the committed CPU study's records renamed
    (cpu_spd -> spd), has the same tables with Δ against ``s``. Variants of the other family are
    refused before anything is made."""
    from spd.study.report import write_study_report

    committed = Path(__file__).parents[1] / "benchmarks" / "results_study_long"
    renamed = tmp_path / "full"
    (renamed / "runs").mkdir(parents=True)
    for path in (committed / "runs").glob("*.json"):
        run = json.loads(path.read_text())
        run["variant"] = run["variant"].removeprefix("cpu_")
        (renamed / "runs" / path.name.replace("cpu_", "")).write_text(json.dumps(run))
    settings = json.loads((committed / "study.json").read_text())
    (renamed / "study.json").write_text(json.dumps(settings | {"recipe_file": "study_full.yaml"}))
    write_study_report(committed, tmp_path / "cpu")
    write_study_report(renamed, tmp_path / "full_report")
    cpu = (tmp_path / "cpu" / "study.md").read_text()
    full = (tmp_path / "full_report" / "study.md").read_text()
    assert "| spd | 3 | final (step 6000) |" in full and "Δ vs s (A)" in full and "cpu_" not in full
    assert "with the recipe of study_full.yaml; machine" in full and "with the demo's recipe; machine" in cpu
    assert full == cpu.replace("cpu_", "").replace("the demo's recipe", "the recipe of study_full.yaml")
    refused = subprocess.run([sys.executable, str(STUDY), "--out", str(tmp_path / "mixed"), "--recipe",
                              str(Path(__file__).parents[1] / "configs" / "study_full.yaml"), "--variants", "cpu_spd"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "--variants cpu_spd is of the other" in refused.stderr
    assert not any((tmp_path / "mixed").iterdir())


def test_a_study_recorded_before_new_config_keys_resumes(tmp_path):
    """study.json keeps the resolved recipe; a key added to the config since (at its default) must
    not make an unfinished study refuse to resume."""
    from spd.config import load_config
    from spd.study.driver import check_same_study

    _, recipe = load_config(None, ["model.preset=cpu_spd", "model.dilated=null"])
    older = json.loads(json.dumps(recipe))
    del older["loss"]["weights"]  # as written before loss.weights existed
    (tmp_path / "study.json").write_text(json.dumps({"recipe": older, "steps": 8}))
    check_same_study(tmp_path, {"recipe": recipe, "steps": 8})
    from spd.ops.errors import InputError

    with pytest.raises(InputError, match="steps differ"):
        check_same_study(tmp_path, {"recipe": recipe, "steps": 9})
