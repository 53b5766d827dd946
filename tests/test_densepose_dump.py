"""The reference tool's dump is read without the densepose package: a stand-in module makes the
file here, is removed, and the importer must still read it."""

import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings, strategies as st
from PIL import Image

from spd.data.densepose_dump import import_dump, paste_chart
from spd.data.errors import DataError
from spd.data.image_io import read_iuv

MODULES = ["densepose", "densepose.structures", "densepose.structures.chart_result"]


def _write_dump(path, entries_fn):
    """Defines the reference classes under their real module names, saves, and removes them."""
    for name in MODULES:
        sys.modules[name] = types.ModuleType(name)

    @dataclass
    class DensePoseChartResultWithConfidences:
        labels: torch.Tensor
        uv: torch.Tensor
        sigma_1: torch.Tensor | None = None
        coarse_segm_confidence: torch.Tensor | None = None

    DensePoseChartResultWithConfidences.__module__ = MODULES[-1]
    DensePoseChartResultWithConfidences.__qualname__ = "DensePoseChartResultWithConfidences"
    sys.modules[MODULES[-1]].DensePoseChartResultWithConfidences = DensePoseChartResultWithConfidences
    try:
        torch.save(entries_fn(DensePoseChartResultWithConfidences), path)
    finally:
        for name in MODULES:
            del sys.modules[name]


def test_import_pastes_the_top_scoring_person(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(images / f"{name}.jpg")

    def entries(cls):
        weak = cls(torch.full((4, 4), 7, dtype=torch.long), torch.full((2, 4, 4), 0.1))
        labels = torch.zeros(5, 6, dtype=torch.long)
        labels[1:4, 1:5] = 2
        uv = torch.stack([torch.full((5, 6), 0.5), torch.full((5, 6), 1.0)])
        strong = cls(labels, uv, sigma_1=torch.zeros(5, 6))
        return [
            {"file_name": "/elsewhere/a.jpg", "scores": torch.tensor([0.3, 0.9]),
             "pred_boxes_XYXY": torch.tensor([[0.0, 0.0, 4.0, 4.0], [10.7, 3.2, 16.7, 8.2]]),
             "pred_densepose": [weak, strong]},
            {"file_name": "b.jpg", "scores": torch.zeros(0), "pred_boxes_XYXY": torch.zeros(0, 4),
             "pred_densepose": []},
            {"file_name": "c.jpg", "scores": torch.tensor([0.8]),
             "pred_boxes_XYXY": torch.tensor([[27.0, 17.0, 33.0, 22.0]]), "pred_densepose": [strong]},
        ]

    dump = tmp_path / "dump.pkl"
    _write_dump(dump, entries)
    assert "densepose" not in sys.modules
    result = import_dump(dump, images, tmp_path / "iuv")
    assert [p.name for p in result.written] == ["a.png", "c.png"]
    assert result.no_detection == ["b"]
    assert (tmp_path / "iuv" / "no_detection.txt").read_text() == "b\n"
    index, uv = read_iuv(tmp_path / "iuv" / "a.png")
    assert index.shape == (20, 30)
    # Box corner (10.7, 3.2) -> column 10, row 3; part pixels at rows 1..3, columns 1..4 of the chart.
    assert index[4:7, 11:15].eq(2).all() and int(index.sum()) == 2 * 12
    assert torch.allclose(uv[0][4:7, 11:15], torch.tensor(0.5), atol=1 / 255)
    assert uv[0][index == 0].eq(0).all()
    # Clipped at the border: corner (27, 17) puts the part at rows 18..20, columns 28..31 of a
    # 20x30 image, of which rows 18..19 and columns 28..29 remain.
    index_c, _ = read_iuv(tmp_path / "iuv" / "c.png")
    assert index_c[18:20, 28:30].eq(2).all() and int((index_c == 2).sum()) == 4
    assert not (tmp_path / "iuv" / "b.png").exists()


def test_foreign_file_is_a_clear_error(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="x.pkl: cannot read as an apply_net dump"):
        import_dump(path, tmp_path, tmp_path / "out")


def test_an_old_plain_pickle_dump_is_named_as_such(tmp_path):
    import pickle

    path = tmp_path / "old_dump.pkl"
    path.write_bytes(pickle.dumps([{"file_name": "a.jpg"}]))
    with pytest.raises(DataError, match="old_dump.pkl: an old-format apply_net dump \\(plain pickle\\)"):
        import_dump(path, tmp_path, tmp_path / "out")


@pytest.mark.parametrize("fault, message", [
    ("uv shape", r"entry 0 \(a\): the chart's uv has shape \(2, 3, 3\), its labels \(4, 4\)"),
    ("nan box", r"entry 0 \(a\): box \[nan, 0.0, 4.0, 4.0\] is not finite"),
])
def test_bad_dump_entries_are_named(tmp_path, fault, message):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(images / "a.jpg")

    def entries(cls):
        uv = torch.zeros(2, 3, 3) if fault == "uv shape" else torch.zeros(2, 4, 4)
        box = torch.tensor([[float("nan") if fault == "nan box" else 0.0, 0.0, 4.0, 4.0]])
        return [{"file_name": "a.jpg", "scores": torch.tensor([0.9]), "pred_boxes_XYXY": box,
                 "pred_densepose": [cls(torch.ones(4, 4, dtype=torch.long), uv)]}]

    dump = tmp_path / "dump.pkl"
    _write_dump(dump, entries)
    with pytest.raises(DataError, match=message):
        import_dump(dump, images, tmp_path / "iuv")


@settings(max_examples=60, deadline=None)
@given(x=st.floats(-10, 40), y=st.floats(-10, 30), h=st.integers(1, 12), w=st.integers(1, 12))
@example(x=0.0, y=-1.9999999999999982, h=2, w=1)
def test_paste_keeps_every_visible_part_pixel(x, y, h, w):
    labels = torch.ones(h, w, dtype=torch.long)
    box = torch.tensor([x, y, x + w, y + h])
    index, uv = paste_chart(labels, torch.rand(2, h, w), box, (20, 30))
    # The corner as the box holds it (float32): y = -1.9999999999999982 is -2.0 there.
    x0, y0 = int(box[0]), int(box[1])
    visible = max(0, min(x0 + w, 30) - max(x0, 0)) * max(0, min(y0 + h, 20) - max(y0, 0))
    assert int(index.sum()) == visible
    assert uv.shape == (2, 20, 30) and (uv[:, index == 0] == 0).all()
