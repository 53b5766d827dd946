"""Metrics against values computed by hand on toy arrays."""

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from spd.labels import keypoint_space
from spd.metrics import (ConfusionMatrix, PerImageIoU, confusion_matrix, parsing_scores, pckh_scores, pckh_update,
                         per_image_iou_update, per_image_miou)

PRED = torch.tensor([[0, 1], [1, 1]])
GT = torch.tensor([[0, 1], [0, 255]])


def test_confusion_matrix_ignores_255_and_counts_foreign_predictions():
    conf = confusion_matrix(PRED, GT, 3)
    assert conf.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    foreign = confusion_matrix(torch.tensor([255, 0]), torch.tensor([0, 0]), 3)
    assert foreign[0].tolist() == [1, 0, 0, 1]


def test_scores_by_hand():
    s = parsing_scores(confusion_matrix(PRED, GT, 3))
    # TP = [1, 1, 0], GT = [2, 1, 0], Pred = [1, 2, 0]; class 2 is absent from both.
    assert s.pixel_accuracy == pytest.approx(2 / 3)
    assert s.mean_accuracy == pytest.approx((1 / 2 + 1) / 2)
    assert s.iou[:2] == pytest.approx([0.5, 0.5]) and math.isnan(s.iou[2])
    assert s.miou == pytest.approx(0.5)
    assert s.fwiou == pytest.approx(2 / 3 * 0.5 + 1 / 3 * 0.5)
    assert parsing_scores(confusion_matrix(PRED, GT, 3), absent="zero").miou == pytest.approx(1 / 3)


def test_a_class_predicted_but_absent_from_ground_truth_has_iou_zero():
    s = parsing_scores(confusion_matrix(torch.tensor([2, 0]), torch.tensor([0, 0]), 3))
    assert s.iou[0] == pytest.approx(0.5) and s.iou[2] == 0.0 and math.isnan(s.iou[1])
    assert math.isnan(s.accuracy[2])  # no ground truth: recall undefined
    foreign = parsing_scores(confusion_matrix(torch.tensor([255]), torch.tensor([0]), 2))
    assert foreign.iou[0] == 0.0 and foreign.pixel_accuracy == 0.0


def test_whole_set_protocol_differs_from_per_image_average():
    # Image 1: a big class-1 region predicted right; image 2: a tiny class-1 region missed.
    a_pred, a_gt = torch.ones(10, 10, dtype=torch.long), torch.ones(10, 10, dtype=torch.long)
    b_pred = torch.zeros(10, 10, dtype=torch.long)
    b_gt = torch.zeros(10, 10, dtype=torch.long)
    b_gt[0, 0] = 1
    conf = confusion_matrix(a_pred, a_gt, 2) + confusion_matrix(b_pred, b_gt, 2)
    assert parsing_scores(conf).iou[1] == pytest.approx(100 / 101)
    sums = [per_image_iou_update(p, g, 2) for p, g in ((a_pred, a_gt), (b_pred, b_gt))]
    iou = sum(s[0] for s in sums)
    count = sum(s[1] for s in sums)
    # Class 1 is in both prediction and ground truth only in image 1; class 0 only in image 2.
    assert count.tolist() == [1, 1]
    assert per_image_miou(iou, count) == pytest.approx((99 / 100 + 1.0) / 2)


def test_pckh_by_hand():
    space = keypoint_space()
    gt = torch.full((2, 16, 2), float("nan"))
    pred = torch.zeros(2, 16, 2)
    gt[0, 9], gt[0, 8] = torch.tensor([0.0, 0.0]), torch.tensor([0.0, 10.0])  # normaliser 10, threshold 5
    pred[0, 9], pred[0, 8] = gt[0, 9], gt[0, 8]
    gt[0, 10] = torch.tensor([20.0, 20.0])
    pred[0, 10] = torch.tensor([24.0, 20.0])   # 4 px: correct
    gt[0, 15] = torch.tensor([40.0, 40.0])
    pred[0, 15] = torch.tensor([40.0, 46.0])   # 6 px: wrong
    gt[0, 0] = torch.tensor([5.0, 5.0])
    pred[0, 0] = float("nan")                  # no prediction: wrong
    gt[1, 10] = torch.tensor([1.0, 1.0])       # image 2 has no head segment: left out
    correct, counted = pckh_update(pred, gt, space)
    assert counted.tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1]
    assert correct.tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    scores = pckh_scores(correct, counted, space)
    assert scores["Head"] == 100.0 and scores["Wrist"] == 50.0 and scores["Ankle"] == 0.0
    assert scores["Total"] == pytest.approx(100 * 3 / 5) and math.isnan(scores["Knee"])


def test_pckh_groups_average_their_joints_and_negative_coordinates_are_missing():
    """LIP's evaluation: Wrist = (PCKh(r_wrist) + PCKh(l_wrist)) / 2, not the pooled count."""
    space = keypoint_space()
    gt = torch.full((3, 16, 2), float("nan"))
    gt[:, 9], gt[:, 8] = torch.tensor([0.0, 0.0]), torch.tensor([0.0, 10.0])
    pred = gt.clone()
    gt[:, 10] = torch.tensor([20.0, 20.0])
    pred[:, 10] = gt[:, 10]                           # r_wrist: 3 of 3
    gt[0, 15] = torch.tensor([40.0, 40.0])
    pred[0, 15] = torch.tensor([40.0, 48.0])          # l_wrist: 0 of 1
    gt[1, 15] = torch.tensor([-1.0, 30.0])            # negative: missing, not counted
    pred[1, 15] = torch.tensor([100.0, 100.0])
    gt[2, 9] = torch.tensor([-5.0, 0.0])              # head top negative: image 3 left out
    correct, counted = pckh_update(pred, gt, space)
    assert counted[10] == 2 and counted[15] == 1 and correct[10] == 2
    scores = pckh_scores(correct, counted, space)
    assert scores["Wrist"] == pytest.approx(50.0)      # pooled would say 2 / 3
    assert scores["Total"] == pytest.approx(100 * 6 / 7)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(1, 200), st.integers(0, 10_000))
def test_accumulating_in_parts_equals_one_matrix(k, n, seed):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randint(0, k, (n,), generator=g)
    gt = torch.randint(0, k + 1, (n,), generator=g)
    gt[gt == k] = 255
    metric = ConfusionMatrix(k)
    half = n // 2
    metric.update(pred[:half], gt[:half])
    metric.update(pred[half:], gt[half:])
    assert torch.equal(metric.conf, confusion_matrix(pred, gt, k))
    s = metric.compute()
    assert 0 <= s.pixel_accuracy <= 1 or math.isnan(s.pixel_accuracy)
    assert s.miou <= 1 or math.isnan(s.miou)


def _ddp_worker(rank, init_file, out_file, pred, gt, images):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    conf, per_image = ConfusionMatrix(3), PerImageIoU(3)
    for i in range(rank, len(images), 2):  # each process sees half of the images
        p, g = pred[images[i]], gt[images[i]]
        conf.update(p, g)
        per_image.update(p, g)
    scores, pim = conf.compute(), per_image.compute()
    with conf.sync_context():
        synced = conf.conf.clone()
    if rank == 0:
        torch.save({"conf": synced, "local": conf.conf.clone(), "miou": scores.miou, "per_image": pim}, out_file)
    dist.destroy_process_group()


def test_metrics_sum_across_two_gloo_processes(tmp_path):
    import torch.multiprocessing as mp

    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 3, (6, 5, 5), generator=g)
    gt = torch.randint(0, 3, (6, 5, 5), generator=g)
    images = list(range(6))
    mp.spawn(_ddp_worker, args=(str(tmp_path / "init"), str(tmp_path / "out.pt"), pred, gt, images), nprocs=2)
    result = torch.load(tmp_path / "out.pt")
    single, per_image = ConfusionMatrix(3), PerImageIoU(3)
    for i in images:
        single.update(pred[i], gt[i])
        per_image.update(pred[i], gt[i])
    assert torch.equal(result["conf"], single.conf)
    assert not torch.equal(result["local"], single.conf)  # rank 0 alone saw only half
    assert result["miou"] == pytest.approx(single.compute().miou)
    assert result["per_image"] == pytest.approx(per_image.compute())


def test_undefined_metrics_are_null_in_json_and_a_dash_in_markdown(tmp_path):
    import json

    from spd.evaluation.evaluator import EvalResult, write_result

    meta = {"name": "x", "images": 1, "protocol": {}, "data": {"root": "r", "split": "val", "label_space": "lip"}}
    result = EvalResult(meta=meta, parsing={"pixel_accuracy": 90.0, "mean_accuracy": None, "miou": float("nan"),
                                            "fwiou": 1.0, "per_image_miou_nonstandard": None,
                                            "iou": {"Hat": None}, "accuracy": {"Hat": float("nan")}})
    paths = write_result(result, tmp_path)
    doc = json.loads(paths["json"].read_text())  # strict JSON: no bare NaN
    assert doc["parsing"]["miou"] is None and doc["parsing"]["accuracy"]["Hat"] is None
    text = paths["markdown"].read_text()
    assert "None" not in text and "nan" not in text and "| Hat | – | – |" in text
