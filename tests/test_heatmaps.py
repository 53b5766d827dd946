import math

import torch
from hypothesis import given, settings, strategies as st

from spd.data.heatmaps import HeatmapCodec


@settings(max_examples=200, deadline=None)
@given(st.floats(24, 360), st.floats(24, 360), st.sampled_from([4, 8]), st.sampled_from([4.0, 8.0]))
def test_decode_inverts_encode_away_from_the_border(x, y, stride, sigma):
    codec = HeatmapCodec(stride=stride, sigma=sigma)
    heat, weight = codec.encode(torch.tensor([[x, y]]), (384, 384))
    assert weight.tolist() == [1.0]
    # The nearest cell centre is at most half a cell away along each axis.
    assert float(heat.max()) >= math.exp(-2 * (stride / 2) ** 2 / (2 * sigma ** 2)) - 1e-6
    decoded, score = codec.decode(heat)
    assert torch.allclose(decoded, torch.tensor([[x, y]]), atol=0.05), (decoded, x, y)


def test_jppnet_default_grid_and_shape():
    codec = HeatmapCodec()
    assert codec.stride == 8 and codec.sigma == 8.0
    heat, _ = codec.encode(torch.zeros(2, 16, 2), (384, 384))
    assert heat.shape == (2, 16, 48, 48)
    # Cell j's centre is at input pixel (j + 0.5) * 8 - 0.5: a joint there peaks at exactly 1.
    heat, _ = codec.encode(torch.tensor([[3.5 + 8 * 5, 3.5 + 8 * 2]]), (384, 384))
    assert heat[0, 2, 5] == 1.0 and heat.argmax() == 2 * 48 + 5


def test_missing_and_outside_joints_get_zero_maps_and_weights():
    codec = HeatmapCodec()
    kp = torch.tensor([[float("nan"), 10.0], [400.0, 10.0], [-3.0, 5.0], [100.0, 100.0]])
    heat, weight = codec.encode(kp, (384, 384))
    assert weight.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert heat[:3].abs().sum() == 0 and heat[3].sum() > 0


def test_decode_batches_and_border_peaks():
    codec = HeatmapCodec()
    kp = torch.tensor([[[0.0, 0.0], [383.0, 383.0]], [[100.0, 50.0], [7.0, 300.0]]])
    heat, _ = codec.encode(kp, (384, 384))
    decoded, scores = codec.decode(heat)
    assert decoded.shape == (2, 2, 2) and scores.shape == (2, 2)
    assert (decoded - kp).abs().max() <= 4.0  # within half a cell, even at the border


def test_decoding_a_lazy_source_is_decoding_the_tensor():
    """The product decodes heatmaps resized to a photo band by band (a MapSource); that is the same
    decoding as on a tensor, which encode round-trips."""
    from spd.data.heatmaps import GridMaps

    codec = HeatmapCodec(stride=4)
    keypoints = torch.tensor([[10.0, 20.0], [33.3, 7.7], [50.0, 60.0]])
    heatmaps, _ = codec.encode(keypoints, (80, 64))
    from_tensor = codec.decode(heatmaps)
    from_source = codec.decode(GridMaps(heatmaps))
    assert torch.equal(from_tensor[0], from_source[0]) and torch.equal(from_tensor[1], from_source[1])
    assert torch.allclose(from_source[0], keypoints, atol=1e-3)
