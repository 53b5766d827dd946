"""The exact shortcuts of ResizedSum (labels computed at full size only near a change of label, a
peak found by branch and bound, U and V resized only for the predicted part) against evaluating
every pixel, on maps with structure (smooth fields and their ties), for both resize policies."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from spd.data.heatmaps import find_peaks
from spd.inference.placement import place
from spd.inference.resized import ResizedSum
from spd.ops.argmax import channel_argmax


class Plain:
    """The same maps without the shortcuts: every pixel evaluated (the reference)."""

    def __init__(self, source: ResizedSum):
        self.source = source
        self.channels, self.height, self.width = source.channels, source.height, source.width

    def bands(self):
        return self.source.bands()

    def rows(self, a, b):
        return self.source.rows(a, b)

    def at(self, rows, cols):
        return self.source.at(rows, cols)


def smooth_maps(seed: int, channels: int, size: tuple[int, int], quantise: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, channels, max(2, size[0] // 4), max(2, size[1] // 4), generator=g)
    maps = F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)[0] * 3
    return maps.round() if quantise else maps  # rounded: many exact ties between channels


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), h=st.integers(2, 24), w=st.integers(2, 24),
       photo_h=st.integers(1, 300), photo_w=st.integers(1, 300), letterbox=st.booleans(), quantise=st.booleans())
def test_labels_select_and_peaks_equal_every_pixel(seed, h, w, photo_h, photo_w, letterbox, quantise):
    maps = smooth_maps(seed, 6, (h, w), quantise)
    placement = place(photo_h, photo_w, (h * 4, w * 4), "letterbox" if letterbox else "squash")
    source = ResizedSum([maps], [placement], factor=0.5, search_from=0)  # small maps: search all the same
    full = torch.cat([source.rows(a, b) for a, b in source.bands()], dim=1)
    labels = source.labels()
    # Equal wherever the pixel's two best channels differ by more than float rounding: grid_sample
    # may round a pixel's value differently in another grid shape (vector lanes against the tail),
    # which decides exact ties either way.
    top = full.topk(2, dim=0).values
    decided = (top[0] - top[1]) > 1e-5
    assert torch.equal(labels[decided], full.argmax(0).to(torch.uint8)[decided])
    index = torch.randint(0, 3, (photo_h, photo_w), generator=torch.Generator().manual_seed(seed))
    picked = source.select(index, 2)
    expected = full.reshape(2, 3, photo_h, photo_w).gather(1, index[None, None].expand(2, 1, -1, -1))[:, 0]
    torch.testing.assert_close(picked, expected, rtol=1e-5, atol=1e-5)
    fast_xy, fast_value = find_peaks(source, refine=False)
    slow_xy, slow_value = find_peaks(Plain(source), refine=False)
    torch.testing.assert_close(fast_value, slow_value, rtol=0, atol=1e-6)
    # The same pixel, or (between maxima equal up to rounding) one of the same value.
    at = full[torch.arange(6), fast_xy[:, 1].long(), fast_xy[:, 0].long()]
    torch.testing.assert_close(at, slow_value, rtol=0, atol=1e-6)
    unique = (full.flatten(1) >= slow_value[:, None] - 1e-6).sum(1) == 1
    assert torch.equal(fast_xy[unique], slow_xy[unique])


def test_several_maps_take_the_full_path():
    maps = [smooth_maps(1, 4, (8, 8), False), smooth_maps(2, 4, (6, 6), False)]
    placements = [place(50, 40, (32, 32), "squash"), place(50, 40, (24, 24), "squash")]
    source = ResizedSum(maps, placements)
    assert source.peak_indices() is None
    full = torch.cat([source.rows(a, b) for a, b in source.bands()], dim=1)
    assert torch.equal(source.labels(), full.argmax(0).to(torch.uint8))


def test_flat_and_non_finite_maps_give_what_every_pixel_gives():
    flat = torch.zeros(3, 12, 10)
    flat[1, 5:, :] = -1.0  # a plateau over the first rows
    source = ResizedSum([flat], [place(90, 70, (48, 40), "squash")], search_from=0)
    fast_xy, fast_value = find_peaks(source, refine=False)
    slow_xy, slow_value = find_peaks(Plain(source), refine=False)
    assert torch.equal(fast_xy, slow_xy) and torch.equal(fast_value, slow_value)  # the first pixel, as a full scan
    nan = flat.clone()
    nan[2, 3, 3] = float("nan")
    source = ResizedSum([nan], [place(90, 70, (48, 40), "squash")])
    assert source.peak_indices() is None and source._cells() is None  # NaN: every pixel evaluated, as before


def test_small_outputs_are_searched_by_evaluating_every_pixel():
    """Below ``search_from`` (one band: a photo of up to ~500 x 1000 with 16 joints) the search
    costs more than evaluating every pixel, which gives the same peaks."""
    maps = smooth_maps(3, 16, (48, 48), False)
    source = ResizedSum([maps], [place(384, 384, (384, 384), "squash")])
    assert source.peak_indices() is None
    searched = ResizedSum([maps], [place(384, 384, (384, 384), "squash")], search_from=0)
    assert searched.peak_indices() is not None
    assert torch.equal(find_peaks(source, refine=False)[0], find_peaks(searched, refine=False)[0])


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10_000), channels=st.integers(1, 6), dim=st.integers(0, 1), ties=st.booleans(),
       nan=st.booleans(), bf16=st.booleans())
def test_channel_argmax_is_argmax(seed, channels, dim, ties, nan, bf16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(channels, 5, 7, generator=g)
    x = x.round() if ties else x  # many equal maxima: the first one wins in both
    if nan:
        x[torch.rand(x.shape, generator=g) < 0.1] = float("nan")
    x = x.to(torch.bfloat16) if bf16 else x
    x = x.movedim(0, dim)
    assert torch.equal(channel_argmax(x, dim), x.argmax(dim))
