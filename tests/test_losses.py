import math

import pytest
import torch

from test_model import LIGHT
from hypothesis import given, settings, strategies as st

from spd.losses import LossConfig, MultiTaskLoss, parsing_loss, pose_loss, uv_loss
from spd.model import SPDNet, model_config
from spd.model.outputs import ModelOutput, StageOutput


def test_parsing_loss_ignores_255_and_samples_without_labels():
    logits = torch.zeros(2, 3, 2, 2)
    logits[:, 1] = 10.0
    target = torch.tensor([[[1, 1], [1, 255]], [[0, 0], [0, 0]]])
    only_first = parsing_loss(logits, target, torch.tensor([True, False]))
    assert only_first < 1e-3  # sample 0 is right everywhere it is labelled
    assert parsing_loss(logits, target, torch.tensor([True, True])) > 5
    none = parsing_loss(logits.requires_grad_(), target, torch.tensor([False, False]))
    none.backward()
    assert none == 0 and torch.isfinite(logits.grad).all()


def test_parsing_labels_are_resized_to_the_logits_grid():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[:, :, 4:] = 1
    logits = torch.zeros(1, 2, 2, 2)
    logits[:, 1, :, 1] = 10.0
    logits[:, 0, :, 0] = 10.0
    assert parsing_loss(logits, target, torch.tensor([True])) < 1e-3


def test_dense_loss_at_input_resolution_sees_parts_thinner_than_a_cell():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, :, 1] = 1  # one pixel wide: no 4x4 cell of the 2x2 logits has its centre on it
    logits = torch.tensor([10.0, -10.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2).contiguous()
    has = torch.tensor([True])
    assert parsing_loss(logits, target, has, "output") < 1e-6
    assert torch.isclose(parsing_loss(logits, target, has, "input"), torch.tensor(20.0 / 8), atol=1e-3)
    with pytest.raises(ValueError, match="input"):
        parsing_loss(logits, target, has, "full")
    with pytest.raises(ValueError, match="dense_at"):
        LossConfig(dense_at="full")


def test_pose_l2_is_the_per_image_norm_and_masks_joints():
    pred = torch.zeros(2, 3, 2, 2, requires_grad=True)
    target = torch.ones(2, 3, 2, 2)
    weight = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    loss = pose_loss(pred, target, weight)
    assert torch.isclose(loss, torch.tensor(8.0).sqrt())  # image 0: 2 joints x 4 cells; image 1 left out
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[1].abs().sum() == 0 and pred.grad[0, 2].abs().sum() == 0


def test_uv_loss_uses_the_ground_truth_parts_channel_at_valid_foreground():
    pred = torch.full((1, 2, 24, 2, 2), 0.5)
    pred[0, :, 4] = 0.9  # part 5's channel
    index = torch.tensor([[[5, 5], [0, 255]]])
    uv = torch.full((1, 2, 2, 2), 0.9)
    valid = torch.ones(1, 2, 2, dtype=torch.bool)
    assert uv_loss(pred, index, uv, valid) < 1e-6
    uv[0, :, 0, 0] = 0.1
    assert uv_loss(pred, index, uv, valid) > 0
    valid[0, 0, 0] = False
    assert uv_loss(pred, index, uv, valid) < 1e-6
    assert uv_loss(pred, index, uv, torch.zeros_like(valid)) == 0


@settings(max_examples=20, deadline=None)
@given(st.floats(0, 3), st.floats(0, 3), st.floats(0, 3))
def test_total_is_the_weighted_sum_of_logged_terms(ls, lp, ld):
    torch.manual_seed(0)
    b, h, w = 2, 4, 4
    stage = StageOutput(parsing=torch.randn(b, 20, h, w), pose=torch.randn(b, 16, h, w),
                        dp_index=torch.randn(b, 25, h, w), dp_uv=torch.rand(b, 2, 24, h, w))
    batch = {"parsing": torch.randint(0, 20, (b, 32, 32)), "has_parsing": torch.tensor([True, True]),
             "heatmaps": torch.rand(b, 16, h, w), "joint_weight": torch.ones(b, 16), "has_pose": torch.tensor([True, False]),
             "dp_index": torch.randint(0, 25, (b, 32, 32)), "dp_uv": torch.rand(b, 2, 32, 32),
             "dp_uv_valid": torch.ones(b, 32, 32, dtype=torch.bool), "has_densepose": torch.tensor([False, True])}
    out = MultiTaskLoss(LossConfig(parsing=ls, pose=lp, densepose=ld))(ModelOutput([stage, stage]), batch)
    t = out.terms
    expected = ls * t["parsing"] + lp * t["pose"] + ld * (t["dp_index"] + t["dp_uv"])
    assert torch.isclose(out.total, expected, rtol=1e-5)
    single = MultiTaskLoss()(ModelOutput([stage]), batch).terms
    assert torch.isclose(t["parsing"], 2 * single["parsing"])  # summed over stages
    # The part index can be supervised at another resolution than parsing; parsing is unchanged.
    mixed = MultiTaskLoss(LossConfig(dense_at="input", part_at="output"))(ModelOutput([stage]), batch).terms
    at_input = MultiTaskLoss(LossConfig(dense_at="input"))(ModelOutput([stage]), batch).terms
    assert torch.isclose(mixed["dp_index"], single["dp_index"]) and torch.isclose(mixed["parsing"], at_input["parsing"])
    assert not torch.isclose(mixed["dp_index"], at_input["dp_index"])


def test_a_preset_overfits_one_synthetic_batch(synth_lip):
    from spd.data.dataset import ParsingDataset
    from spd.data.detect import open_dataset
    from spd.data.transforms import AugmentConfig, train_transform

    torch.manual_seed(0)
    ds = ParsingDataset(open_dataset(synth_lip, "train"), train_transform(AugmentConfig(size=(64, 64))))
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    model = SPDNet(model_config(LIGHT)).train()
    criterion = MultiTaskLoss()
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    x = model.normalise(batch["image"])
    first = None
    for _ in range(80):
        loss = criterion(model(x), batch)
        optimiser.zero_grad()
        loss.total.backward()
        optimiser.step()
        first = first or {k: float(v.detach()) for k, v in loss.terms.items()}
    last = {k: float(v.detach()) for k, v in loss.terms.items()}
    # Measured at 80 steps: parsing / 7, part index / 3, U,V / 2.3, pose (per-image L2) / 1.3.
    assert last["parsing"] < first["parsing"] / 4, (first, last)
    assert last["dp_index"] < first["dp_index"] / 2, (first, last)
    assert last["dp_uv"] < first["dp_uv"] / 1.5, (first, last)
    assert last["pose"] < first["pose"] * 0.9, (first, last)


def test_multi_scale_outputs_are_all_supervised(synth_lip):
    from spd.data.dataset import ParsingDataset
    from spd.data.detect import open_dataset
    from spd.data.transforms import AugmentConfig, train_transform

    ds = ParsingDataset(open_dataset(synth_lip, "train"), train_transform(AugmentConfig(size=(64, 64))))
    batch = torch.utils.data.default_collate([ds[i] for i in range(2)])
    model = SPDNet(model_config({"preset": "spd", "refine_stages": 1, "train_scales": [1.0, 0.5],
                                 "dilated": {"depth": 18, "width": 0.125}}))
    out = model(model.normalise(batch["image"]))
    assert out.scales[0.5][0].pose.shape[-2:] == (4, 4) and batch["heatmaps"].shape[-2:] == (8, 8)
    loss = MultiTaskLoss()(out, batch)
    # 2 stages x (fused + 2 scales) = 6 terms per task, as JPPNet sums them.
    single = MultiTaskLoss()(ModelOutput([out.stages[0]]), batch)
    assert loss.terms["parsing"] > 4 * single.terms["parsing"]
    loss.total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_uncertainty_weighting_starts_at_the_fixed_weights_and_learns_one_over_the_loss():
    """Kendall et al.: total = sum exp(-s_t) L_t + s_t. Each s starts at -log of the task's fixed
    weight (so step 0 trains as the fixed recipe), and for constant losses the weights settle where
    exp(-s_t) = 1 / L_t, within the clamp of +-5 on s."""
    config = LossConfig(parsing=1.0, pose=0.03, densepose=1.0, balance="uncertainty")
    loss = MultiTaskLoss(config, tasks=("parsing", "pose", "densepose"))
    start = {t: float(w) for t, w in loss.task_weights().items()}
    assert start == pytest.approx({"parsing": 1.0, "pose": 0.03, "densepose": 1.0}, rel=1e-6)
    losses = {"parsing": torch.tensor(2.0), "pose": torch.tensor(0.5), "densepose": torch.tensor(1e4)}
    s = loss.log_vars.detach()
    expected = sum(torch.exp(-s[i]) * losses[t] + s[i] for i, t in enumerate(loss.tasks))
    assert float(loss.combine(losses)) == pytest.approx(float(expected), rel=1e-6)
    optimiser = torch.optim.SGD([loss.log_vars], lr=0.05)
    for _ in range(3000):
        optimiser.zero_grad()
        loss.combine(losses).backward()
        optimiser.step()
    learned = {t: float(w) for t, w in loss.task_weights().items()}
    assert learned["parsing"] == pytest.approx(0.5, rel=1e-2) and learned["pose"] == pytest.approx(2.0, rel=1e-2)
    assert learned["densepose"] == pytest.approx(math.exp(-5.0), rel=1e-6)  # 1e-4 lies beyond the clamp
