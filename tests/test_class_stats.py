"""Class frequencies counted from label files, and the class-balanced parsing loss built on them."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from PIL import Image

from spd.data.class_stats import balanced_weights, class_frequencies
from spd.data.detect import open_dataset
from spd.losses import LossConfig, parsing_loss


def test_frequencies_are_the_labelled_pixel_shares_of_the_split(synth_lip):
    reader = open_dataset(synth_lip, "train")
    counts = np.zeros(256)
    for record in reader.records:
        counts += np.bincount(np.asarray(Image.open(record.parsing)).ravel(), minlength=256)
    expected = counts[:20] / counts[:20].sum()  # 255 (ignore) is not a class
    frequencies = class_frequencies(reader, 20)
    assert frequencies.shape == (20,) and np.allclose(frequencies.numpy(), expected)
    # On a sample: seeded, so the same images each time, and still a distribution.
    sampled = class_frequencies(reader, 20, max_images=3, seed=1)
    assert torch.equal(sampled, class_frequencies(reader, 20, max_images=3, seed=1))
    assert torch.isclose(sampled.sum(), torch.tensor(1.0, dtype=torch.float64))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 10**9), min_size=2, max_size=25).filter(any), st.floats(0.0, 1.0))
def test_balanced_weights_keep_the_pixel_weighted_mean_at_one(pixel_counts, power):
    frequencies = torch.tensor(pixel_counts, dtype=torch.float64) / sum(pixel_counts)
    weights = balanced_weights(frequencies, power)
    assert torch.isclose((frequencies * weights.double()).sum(), torch.tensor(1.0, dtype=torch.float64), atol=1e-5)
    seen = frequencies > 0
    # Rarer classes weigh at least as much; an unseen class weighs as the rarest seen one.
    order = torch.argsort(frequencies[seen])
    assert (weights[seen][order].diff() <= 1e-4 * weights.max()).all()
    if (~seen).any():
        assert torch.allclose(weights[~seen], weights[seen].max())


def test_power_zero_is_plain_cross_entropy_and_weights_favour_the_rare_class():
    frequencies = torch.tensor([0.9, 0.1], dtype=torch.float64)
    assert torch.allclose(balanced_weights(frequencies, 0.0), torch.ones(2))
    logits = torch.randn(2, 2, 4, 4)
    target = (torch.rand(2, 4, 4) < 0.1).long()
    has = torch.tensor([True, True])
    assert torch.isclose(parsing_loss(logits, target, has, class_weights=torch.ones(2)), parsing_loss(logits, target, has))
    # Weighted, a mistake on the rare class costs more than the same mistake on the frequent one.
    weights = balanced_weights(frequencies, 1.0)
    wrong = torch.tensor([-5.0, 5.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    on_rare = parsing_loss(-wrong, torch.ones(1, 4, 4, dtype=torch.long), has[:1], class_weights=weights)
    on_frequent = parsing_loss(wrong, torch.zeros(1, 4, 4, dtype=torch.long), has[:1], class_weights=weights)
    assert on_rare > 5 * on_frequent


def test_class_balance_is_range_checked():
    with pytest.raises(ValueError, match="class_balance"):
        LossConfig(class_balance=1.5)
    with pytest.raises(ValueError, match="part_balance"):
        LossConfig(part_balance=-0.1)


def test_part_frequencies_count_the_iuv_part_index(synth_lip):
    reader = open_dataset(synth_lip, "train")
    counts = np.zeros(256)
    for record in reader.records:
        counts += np.bincount(np.asarray(Image.open(record.densepose))[..., 0].ravel(), minlength=256)
    frequencies = class_frequencies(reader, 25, "densepose")
    assert np.allclose(frequencies.numpy(), counts[:25] / counts[:25].sum())
    with pytest.raises(ValueError, match="target"):
        class_frequencies(reader, 25, "pose")


def test_training_counts_the_weights_once_and_a_checkpoint_carries_them(synth_lip):
    from spd.config import load_config
    from spd.training.module import SPDModule
    from spd.training.train import loss_class_weights
    from spd.config import to_dict

    config, _ = load_config(None, ["model.preset=cpu_spd", "loss.class_balance=0.5", "loss.part_balance=1.0"])
    weights = loss_class_weights(config, open_dataset(synth_lip, "train"))
    assert set(weights) == {"class_weights", "part_weights"}
    assert weights["class_weights"].shape == (20,) and weights["part_weights"].shape == (25,)
    trained = SPDModule(to_dict(config), loss_weights=weights)
    assert torch.equal(trained.criterion.part_weights, weights["part_weights"])
    # A module made from the config alone (as when a checkpoint is loaded) takes the saved weights.
    restored = SPDModule(to_dict(config))
    restored.load_state_dict(trained.state_dict())
    assert torch.equal(restored.criterion.class_weights, weights["class_weights"])
    # Plain cross-entropy: nothing counted, nothing saved.
    plain, _ = load_config(None, ["model.preset=cpu_spd"])
    assert loss_class_weights(plain, open_dataset(synth_lip, "train")) == {}
    assert not any("weights" in k for k in SPDModule(to_dict(plain)).state_dict() if k.startswith("criterion"))
