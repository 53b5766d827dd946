import torch

from spd.data.dataset import ParsingDataset
from spd.data.detect import open_dataset
from spd.data.heatmaps import HeatmapCodec
from spd.data.transforms import AugmentConfig, train_transform

CONFIG = AugmentConfig(size=(64, 64), rotation=15)


def test_lip_sample_targets_and_flags(synth_lip):
    ds = ParsingDataset(open_dataset(synth_lip, "train"), train_transform(CONFIG), HeatmapCodec(stride=8))
    torch.manual_seed(0)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.uint8
    assert item["parsing"].shape == (64, 64) and item["parsing"].dtype == torch.uint8  # labels travel as uint8
    assert item["heatmaps"].shape == (16, 8, 8) and item["joint_weight"].shape == (16,)
    assert item["dp_uv"].shape == (2, 64, 64) and item["dp_uv_valid"].shape == (64, 64)
    assert item["has_parsing"] and item["has_pose"] and item["has_densepose"]
    # A joint gets weight 1 exactly when it is present inside the crop.
    kp = item["keypoints"]
    inside = torch.isfinite(kp).all(1) & (kp >= -0.5).all(1) & (kp < 63.5).all(1)
    assert torch.equal(item["joint_weight"].bool(), inside)


def test_mirrored_samples_have_no_uv_target(synth_lip):
    reader = open_dataset(synth_lip, "train")
    flipped = ParsingDataset(reader, train_transform(AugmentConfig(size=(64, 64), flip=1.0)))
    plain = ParsingDataset(reader, train_transform(AugmentConfig(size=(64, 64), flip=0.0, scale=(1.0, 1.0))))
    item = flipped[1]
    assert item["has_densepose"] and not item["has_dp_uv"]
    assert item["dp_uv"].abs().sum() == 0 and not item["dp_uv_valid"].any()
    kept = plain[1]
    assert kept["has_dp_uv"] and kept["dp_uv"][:, kept["dp_uv_valid"]].max() > 0
    # Padding is never a valid U, V target.
    assert not kept["dp_uv_valid"][kept["dp_index"] == 255].any()


def test_atr_samples_mask_pose_and_batch(synth_atr):
    ds = ParsingDataset(open_dataset(synth_atr, "train"), train_transform(CONFIG))
    batch = torch.utils.data.default_collate([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 64, 64)
    assert not batch["has_pose"].any() and batch["joint_weight"].sum() == 0 and batch["heatmaps"].sum() == 0
    assert batch["has_parsing"].all() and batch["parsing"].max() <= 255


def test_untransformed_sample_keeps_the_original_size(fixtures):
    ds = ParsingDataset(open_dataset(fixtures / "lip_official", "val"))
    item = ds[0]
    assert item["image"].shape == (3, 12, 8)
    assert not item["has_parsing"] and (item["parsing"] == 255).all()
    assert item["has_pose"] and not item["has_densepose"]


def test_skip_corrupt_replaces_and_warns(synth_lip, tmp_path, caplog):
    import shutil

    root = tmp_path / "lip"
    shutil.copytree(synth_lip, root)
    reader = open_dataset(root, "train")
    reader.records[0].image.write_bytes(b"broken")
    strict = ParsingDataset(reader)
    try:
        strict[0]
        raise AssertionError("a corrupt image must raise")
    except ValueError as err:
        assert reader.records[0].image.name in str(err)
    lenient = ParsingDataset(reader, skip_corrupt=True)
    assert lenient[0]["id"] == reader.records[1].id
    assert reader.records[0].image.name in caplog.text


def test_resumable_batch_sampler_skips_its_first_pass_only():
    from spd.data.sampling import EpochSampler, ResumableBatchSampler

    sampler = EpochSampler(10, seed=3)
    full = list(ResumableBatchSampler(sampler, 3, drop_last=True))
    resumed = ResumableBatchSampler(sampler, 3, drop_last=True, skip=2)
    assert len(resumed) == len(full) == 3  # Lightning counts the epoch's batches from the length
    assert list(resumed) == full[2:]
    assert list(resumed) == full  # the next epoch starts at its beginning
    sampler.set_epoch(1)
    assert list(resumed) != full  # and its order depends on the epoch
