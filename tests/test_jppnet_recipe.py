"""JPPNet's training recipe (augment.recipe: jppnet): its heatmap files, the square random scale, the
right / bottom padding and the crop, and missing joints kept in the pose loss."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torchvision import tv_tensors

from spd.config import load_config
from spd.data.dataset import build_targets
from spd.data.heatmaps import HeatmapCodec, jppnet_heatmaps
from spd.data.transforms import (MEAN_COLOUR, AugmentConfig, HeatmapStack, JPPNetScaleCrop, ParsingMask,
                                 PartIndexMask, RandomHorizontalFlipSwap, UVMap, train_transform)
from spd.labels import keypoint_space
from spd.losses import pose_loss
from spd.losses.total import LossConfig, stage_terms
from spd.model.outputs import StageOutput

NAN = float("nan")


def _keypoints(*points: tuple[float, float]) -> torch.Tensor:
    kp = torch.full((16, 2), NAN)
    for j, p in enumerate(points):
        kp[j] = torch.tensor(p)
    return kp


def test_heatmap_files_have_sigma_8_in_original_pixels_a_25_px_window_and_peak_255():
    maps = jppnet_heatmaps(_keypoints((60.0, 40.0)), 100, 120)
    row = maps[0, 40].float()
    assert maps.dtype == torch.uint8 and int(maps[0].max()) == 255 and int(maps[0, 40, 60]) == 255
    for dx in (1, 5, 8, 16, 24):  # exp(-d^2 / (2 * 64)), rounded to 8 bits
        assert int(row[60 + dx]) == math.floor(255 * math.exp(-dx * dx / 128) + 0.5)
    assert int(row[60 - 25]) > 0 and int(row[60 + 25]) == 0  # the script's half-open window
    assert int(maps[0, 40 - 26, 60]) == 0 and int(maps[0, 40 + 24, 60]) > 0
    assert int(maps[1:].sum()) == 0  # missing joints: all-zero maps


def test_heatmap_files_clamp_into_the_image_and_skip_the_origin():
    maps = jppnet_heatmaps(_keypoints((500.0, 10.7), (0.0, 0.0), (-3.0, 5.0)), 50, 80)
    # x clamped to the last column, y truncated; the script's half-open window never draws the last
    # column, and the largest drawn pixel is scaled to 255
    assert int(maps[0, 10, 79]) == 0 and int(maps[0, 10, 78]) == 255 and int(maps[0, 11, 78]) < 255
    assert int(maps[1].sum()) == 0       # (0, 0) means "missing" to the official script
    assert int(maps[2, 5, 0]) == 255


def _sample(h: int, w: int) -> dict:
    image = torch.zeros(3, h, w, dtype=torch.uint8)
    image[:, :, : w // 2] = 200  # left half bright
    parsing = torch.zeros(h, w, dtype=torch.uint8)
    parsing[:, : w // 2] = 5
    kp = _keypoints((w / 4, h / 2))
    return {"image": tv_tensors.Image(image), "parsing": ParsingMask(parsing),
            "keypoints": tv_tensors.KeyPoints(kp, canvas_size=(h, w)), "heatmaps": HeatmapStack(jppnet_heatmaps(kp, h, w)),
            "dp_index": PartIndexMask(torch.full((h, w), 255, dtype=torch.uint8)), "dp_uv": UVMap(torch.zeros(3, h, w))}


def test_one_scale_to_a_square_whatever_the_aspect_then_pad_right_and_bottom():
    config = AugmentConfig(recipe="jppnet", size=(40, 40), scale=(0.5, 0.5))
    out = JPPNetScaleCrop(config)(_sample(100, 30))  # tall image -> a 20 x 20 square
    image, parsing, heat = (out[k].as_subclass(torch.Tensor) for k in ("image", "parsing", "heatmaps"))
    assert image.shape == (3, 40, 40) and parsing.shape == (40, 40) and heat.shape == (16, 40, 40)
    assert bool((image[:, :20, :10] == 200).all()) and bool((image[:, :20, 10:20] == 0).all())  # aspect not kept
    assert bool((parsing[:20, :10] == 5).all()) and bool((parsing[:20, 10:20] == 0).all())
    mean = torch.tensor(MEAN_COLOUR).round().to(torch.uint8).view(3, 1)
    for padding in (image[:, 20:].flatten(1), image[:, :, 20:].flatten(1)):  # bottom and right: the mean colour
        assert bool((padding == mean).all())
    assert bool((parsing[20:] == 255).all()) and bool((parsing[:, 20:] == 255).all())
    assert int(heat[:, 20:].sum()) == 0 and int(heat[:, :, 20:].sum()) == 0


def test_random_crop_lies_inside_the_scaled_square():
    config = AugmentConfig(recipe="jppnet", size=(32, 32), scale=(1.25, 1.25))  # 40 x 40, crops of 32
    sample = _sample(80, 80)
    sample["image"] = tv_tensors.Image(torch.arange(80).view(1, 1, 80).expand(3, 80, 80).to(torch.uint8))
    lefts = set()
    for seed in range(40):
        torch.manual_seed(seed)
        out = JPPNetScaleCrop(config)(dict(sample))["image"].as_subclass(torch.Tensor)
        # legacy bilinear of a ramp: column j of the 40 square samples source column 2 j
        left = int(out[0, 0, 0]) // 2
        assert out[0, 0].tolist() == [2 * (left + j) for j in range(32)]
        lefts.add(left)
    assert min(lefts) >= 0 and max(lefts) <= 8 and len(lefts) > 3


def test_heatmaps_stretch_with_the_image_and_mirror_with_joint_swaps():
    config = AugmentConfig(recipe="jppnet", size=(64, 64), scale=(1.0, 1.0))
    sample = _sample(64, 32)  # twice as tall as wide: the square doubles widths
    out = JPPNetScaleCrop(config)(sample)
    heat = out["heatmaps"].as_subclass(torch.Tensor)[0].float()
    original = sample["heatmaps"].as_subclass(torch.Tensor)[0].float()
    width = lambda m: int((m.amax(0) > 0).sum())  # noqa: E731
    assert width(heat) == pytest.approx(2 * width(original), abs=2)
    flipped = RandomHorizontalFlipSwap(p=1.0)(out)["heatmaps"].as_subclass(torch.Tensor)
    right_ankle, left_ankle = 0, keypoint_space().flip_permutation[0]
    assert torch.equal(flipped[left_ankle], out["heatmaps"].as_subclass(torch.Tensor)[right_ankle].flip(-1))


def test_dense_targets_keep_missing_joints_in_the_pose_norm():
    config = AugmentConfig(recipe="jppnet", size=(64, 64), scale=(1.0, 1.0), flip=0.0)
    data = train_transform(config)(_sample(64, 64))
    targets = build_targets(data, {"has_parsing": True, "has_pose": True, "has_densepose": False}, HeatmapCodec())
    assert targets["heatmaps"].shape == (16, 8, 8) and targets["joint_weight"].tolist() == [1.0] * 16
    assert float(targets["heatmaps"][0].max()) == 1.0 and float(targets["heatmaps"][1:].abs().sum()) == 0.0
    pred = torch.zeros(1, 16, 8, 8)
    pred[0, 3] = 0.5  # a confident map for a joint the image lacks
    loss = pose_loss(pred, targets["heatmaps"][None], targets["joint_weight"][None])
    expected = math.sqrt(float((targets["heatmaps"][0] ** 2).sum()) + 64 * 0.25)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_smaller_outputs_read_targets_with_tf_nearest():
    batch = {"heatmaps": torch.arange(64.0).view(1, 1, 8, 8).expand(1, 16, 8, 8).contiguous(),
             "joint_weight": torch.ones(1, 16), "has_pose": torch.tensor([True])}
    pred = torch.zeros(1, 16, 6, 6)
    legacy = stage_terms(StageOutput(pose=pred), batch, LossConfig(resize="tf_legacy"))["pose"]
    rows = [int(math.floor(i * 8 / 6)) for i in range(6)]  # TF1: floor(i * in / out)
    picked = batch["heatmaps"][0, 0][rows][:, rows]
    assert float(legacy) == pytest.approx(math.sqrt(16 * float((picked ** 2).sum())), rel=1e-6)


def test_jppnet_configs_use_the_official_recipe_and_protocol():
    config, _ = load_config(Path(__file__).parents[1] / "configs/lip_jppnet.yaml")
    assert config.augment.recipe == "jppnet" and config.loss.resize == "tf_legacy"
    assert config.eval.pose_decoder == "jppnet" and config.eval.scales == (0.75, 1.0, 1.25)
    with pytest.raises(ValueError, match="augment.recipe"):
        AugmentConfig(recipe="official")
