"""The Python prediction API: inputs, test-time protocol, outputs at the original size."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from predict_helpers import StubNet, write_checkpoint
from spd import Predictor
from spd.inference import EvalConfig
from spd.data.errors import DataError
from spd.labels import keypoint_space, label_space
from spd.inference.placement import place
from spd.inference.resized import ResizedSum


@settings(max_examples=30, deadline=None)
@given(h=st.integers(2, 12), w=st.integers(2, 12), H=st.integers(1, 40), W=st.integers(1, 40),
       band=st.sampled_from([1, 7, 10 ** 6]))
def test_banded_resize_equals_interpolate(h, w, H, W, band):
    maps = torch.randn(3, h, w, generator=torch.Generator().manual_seed(h * 100 + w))
    expected = F.interpolate(maps[None], size=(H, W), mode="bilinear", align_corners=False)[0]
    with mock.patch("spd.inference.resized.BAND_ELEMENTS", band):
        got = ResizedSum([maps], [place(H, W, (4 * h, 4 * w), "squash")]).full()
    assert torch.allclose(got, expected, atol=1e-5)


def test_letterbox_keeps_the_aspect_ratio_centred():
    p = place(100, 50, (64, 64), "letterbox")
    assert p.inner == (64, 32) and (p.top, p.left) == (0, 16)
    assert place(100, 50, (64, 64), "squash").inner == (64, 64)
    with pytest.raises(ValueError, match="resize policy"):
        place(10, 10, (8, 8), "stretch")


@pytest.mark.parametrize("resize", ["squash", "letterbox"])
def test_keypoints_come_back_in_original_image_pixels(resize):
    """A heatmap peak put at the canvas position of a known pixel is decoded at that pixel."""
    height, width, target = 90, 200, (150.0, 30.0)  # (x, y) in the original image
    settings = EvalConfig(input_size=(64, 64), resize=resize)
    p = place(height, width, settings.input_size, resize)
    cx = p.left + (target[0] + 0.5) * p.inner[1] / width  # canvas coordinates of the target
    cy = p.top + (target[1] + 0.5) * p.inner[0] / height
    stub = StubNet()

    def heatmap(canvas, grid):
        ys = (torch.arange(grid[0]) + 0.5) * canvas[0] / grid[0]
        xs = (torch.arange(grid[1]) + 0.5) * canvas[1] / grid[1]
        g = torch.exp(-((ys[:, None] - cy) ** 2 + (xs[None, :] - cx) ** 2) / (2 * 6.0 ** 2))
        return g.expand(stub.config.num_joints, -1, -1)[None]

    stub.heatmap = heatmap
    result = Predictor(stub, settings, device="cpu")(torch.zeros(3, height, width, dtype=torch.uint8))
    error = (result.keypoints - torch.tensor(target)).abs()
    # The heatmap is sampled every 4 canvas pixels: its peak is found to within half a cell.
    half_cell = torch.tensor([2 * width / p.inner[1], 2 * height / p.inner[0]])
    assert bool((error < half_cell).all()), (result.keypoints[0], half_cell)
    assert result.keypoint_scores.min() > 0.8


def _mirror(result, space="lip"):
    """What the prediction of the mirrored image must be, given the prediction of the image."""
    lut = torch.from_numpy(label_space(space).flip_lut())
    dp_lut = torch.from_numpy(label_space("densepose").flip_lut())
    width = result.parsing.shape[1]
    kp = result.keypoints.clone()
    kp[:, 0] = width - 1 - kp[:, 0]
    perm = torch.tensor(keypoint_space().flip_permutation)
    mirrored_kp = torch.empty_like(kp)
    mirrored_kp[perm] = kp
    return lut[result.parsing.flip(-1).long()], mirrored_kp, dp_lut[result.dp_index.flip(-1).long()]


@pytest.mark.parametrize("resize", ["squash", "letterbox"])
def test_flip_protocol_makes_any_model_mirror_equivariant(resize):
    """With flip, prediction(mirror(x)) = mirror(prediction(x)) with left/right classes and joints
    swapped, whatever the network; without flip, this stub network is not."""
    image = torch.randint(0, 256, (3, 37, 52), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for flip in (True, False):
        predictor = Predictor(StubNet(), EvalConfig(input_size=(32, 48), scales=(1.0, 0.75), flip=flip, resize=resize),
                              device="cpu")
        a, b = predictor([image, image.flip(-1)])
        parsing, keypoints, dp_index = _mirror(a)
        agree = (parsing == b.parsing.long()).float().mean().item()
        dp_agree = (dp_index == b.dp_index.long()).float().mean().item()
        if flip:
            assert agree > 0.999 and dp_agree > 0.999
            # Upsampling repeats the border values over the outer columns: a peak there is a tie,
            # which the argmax breaks towards the left in both images. Compare the others.
            inner = (keypoints[:, 0] > 2) & (keypoints[:, 0] < image.shape[-1] - 3)
            assert int(inner.sum()) >= 8
            assert torch.allclose(keypoints[inner], b.keypoints[inner], atol=1e-3)
        else:
            assert agree < 0.95 and dp_agree < 0.95


@pytest.mark.parametrize("interpolation", ["half_pixel", "tf_legacy"])
def test_mirror_tables_reach_the_device_once_per_batch(monkeypatch, interpolation):
    """Flipping back a mirror view needs each task's left / right table on the maps' device: one
    copy per table and batch (a host-to-device copy and sync on a GPU), not one per image, task and
    scale."""
    from spd.inference import run_views

    tables = {label_space("lip").flip_permutation, keypoint_space().flip_permutation,
              label_space("densepose").flip_permutation}
    made, real = [], torch.tensor

    def counting(data, *args, **kwargs):
        if isinstance(data, tuple) and data in tables:
            made.append(data)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(torch, "tensor", counting)
    images = [torch.randint(0, 256, (3, 37, 52), dtype=torch.uint8) for _ in range(3)]
    protocol = EvalConfig(input_size=(32, 48), scales=(0.75, 1.0, 1.25), flip=True, interpolation=interpolation)
    views = run_views(StubNet(), images, protocol)
    assert len(views) == 3 and len(made) == 3


def test_predictor_from_checkpoint_any_input_type_original_size(tmp_path):
    predictor = Predictor.from_checkpoint(write_checkpoint(tmp_path / "m.ckpt"), device="cpu")
    assert predictor.protocol.input_size == (64, 48)  # recorded with the model
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (41, 29, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "a.png")
    inputs = [tmp_path / "a.png", str(tmp_path / "a.png"), Image.fromarray(array), array,
              torch.from_numpy(array).permute(2, 0, 1).contiguous(), np.dstack([array, np.full((41, 29), 7, np.uint8)]),
              array.astype(np.float32) / 255.0]
    results = predictor(inputs)
    assert len(results) == len(inputs)
    for r in results:
        assert r.parsing.shape == (41, 29) and r.parsing.dtype == torch.uint8
        assert r.dp_index.shape == (41, 29) and r.dp_uv.shape == (2, 41, 29)
        assert r.keypoints.shape == (16, 2) and r.keypoint_scores.shape == (16,)
        assert torch.equal(r.parsing, results[0].parsing)
    assert results[0].source == str(tmp_path / "a.png") and results[3].source is None
    assert set(results[0].to_numpy()) == {"parsing", "keypoints", "keypoint_scores", "dp_index", "dp_uv"}
    gray = predictor(rng.integers(0, 65536, (20, 30), dtype=np.uint16))
    assert gray.size == (20, 30)
    probs = predictor(array, return_probs=True).parsing_probs
    assert probs.shape == (20, 41, 29) and torch.allclose(probs.sum(0), torch.ones(41, 29), atol=1e-4)
    assert torch.equal(probs.argmax(0).to(torch.uint8), results[0].parsing)


def test_settings_are_arguments_recorded_in_the_result(tmp_path):
    ckpt = write_checkpoint(tmp_path / "m.ckpt")
    predictor = Predictor.from_checkpoint(ckpt, device="cpu", flip=True, scales=[1.0, 0.5], resize="letterbox",
                                          pose_decoder="argmax", stages="final")
    result = predictor(np.zeros((30, 70, 3), np.uint8))
    assert result.protocol["flip"] is True and result.protocol["scales"] == (1.0, 0.5)
    assert result.protocol["resize"] == "letterbox" and result.protocol["pose_decoder"] == "argmax"
    assert torch.equal(result.keypoints, result.keypoints.round())  # integer argmax
    with pytest.raises(TypeError, match="unknown test-time setting 'flips'"):
        Predictor.from_checkpoint(ckpt, device="cpu", flips=True)
    with pytest.raises(ValueError, match="eval.resize must be one of squash, letterbox"):
        Predictor.from_checkpoint(ckpt, device="cpu", resize="crop")


def test_bad_inputs_name_what_is_wrong(tmp_path):
    predictor = Predictor(StubNet(), EvalConfig(input_size=(32, 32)), device="cpu")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    for path, message in ((tmp_path / "empty.jpg", "empty"), (tmp_path / "text.png", "cannot decode"),
                          (tmp_path / "missing.png", "not found")):
        with pytest.raises(DataError, match=message) as err:
            predictor(path)
        assert str(path) in str(err.value)
    with pytest.raises(ValueError, match="image 1: expected a uint8 tensor"):
        predictor([np.zeros((8, 8, 3), np.uint8), torch.zeros(3, 8, 8)])
    with pytest.raises(ValueError, match="image 0: a float image must hold values in"):
        predictor(np.full((8, 8), 2.0))
    with pytest.raises(TypeError, match="expected a path, PIL image"):
        predictor(42)


@pytest.mark.parametrize("size", [(1, 1), (5, 300), (31, 17)])
def test_tiny_and_thin_images(size):
    result = Predictor(StubNet(), EvalConfig(input_size=(32, 32)), device="cpu")(torch.zeros(3, *size, dtype=torch.uint8))
    assert result.size == size and result.keypoints.shape == (16, 2)


def test_real_photos_of_people(tmp_path):
    """scikit-image's astronaut (RGB) and camera (grayscale) photographs, as files and arrays."""
    data = pytest.importorskip("skimage.data")
    predictor = Predictor.from_checkpoint(write_checkpoint(tmp_path / "m.ckpt"), device="cpu", resize="letterbox")
    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.jpg")
    for result, (h, w) in zip(predictor([tmp_path / "astronaut.jpg", data.camera()]), [(512, 512), (512, 512)]):
        assert result.size == (h, w)
        inside = (result.keypoints >= -0.5) & (result.keypoints <= torch.tensor([w - 0.5, h - 0.5]))
        assert bool(inside.all())
        assert int(result.parsing.max()) < 20 and int(result.dp_index.max()) < 25


def test_evaluation_and_prediction_share_one_protocol(tmp_path):
    from spd.inference import predict_image

    stub, settings = StubNet(), EvalConfig(input_size=(32, 48), scales=(1.0, 0.75), flip=True)
    image = torch.randint(0, 256, (3, 40, 33), dtype=torch.uint8)
    a, b = predict_image(stub, image, settings), Predictor(stub, settings, device="cpu")(image)
    assert torch.equal(a.parsing, b.parsing) and torch.equal(a.keypoints, b.keypoints)


def test_precision_32_keeps_an_autocast_around_it_and_bf16_adds_one():
    """Lightning validates inside its own autocast (bf16-mixed): predict_batch must not switch it off."""
    from spd.inference import predict_batch

    class Recording(StubNet):
        def predict_stages(self, x):
            self.autocast = torch.is_autocast_enabled("cpu")
            return super().predict_stages(x)

    stub, image = Recording(), torch.randint(0, 256, (3, 20, 24), dtype=torch.uint8)
    settings = EvalConfig(input_size=(32, 32))
    predict_batch(stub, [image], settings)
    assert not stub.autocast
    predict_batch(stub, [image], settings, "bf16")
    assert stub.autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        predict_batch(stub, [image], settings)
    assert stub.autocast


def test_a_model_file_of_a_retired_design_is_refused_by_name(tmp_path):
    """Files written before the CPU family's heads became one 3x3 conv and a 1x1 fusing conv (no
    release had them) are not upgraded: the message says why, naming the file."""
    import gzip
    import json

    from safetensors.torch import save_file

    from spd.ops.state import WeightsError

    fixture = json.loads(gzip.decompress((Path(__file__).parent / "fixtures" / "presets_v0.json.gz").read_bytes()))
    record = fixture["presets"]["cpu_spd"]["record"]
    for branch_convs, refine_fuse in ((2, 3), (None, None)):
        config = {k: v for k, v in record["config"].items() if k not in ("branch_convs", "refine_fuse")}
        if branch_convs:
            config.update(branch_convs=branch_convs, refine_fuse=refine_fuse)
        path = tmp_path / f"old{branch_convs}.safetensors"
        save_file({"x": torch.zeros(1)}, str(path), metadata={"format": "spd-weights/1", "eval": "{}",
                                                               "model": json.dumps({**record, "config": config})})
        with pytest.raises(WeightsError, match=rf"{path.name}: made with the CPU family's retired heads"):
            Predictor.from_checkpoint(path, device="cpu")



def test_keypoint_scores_lie_in_zero_to_one():
    """Raw heatmap peaks overshoot (-1.4 to 1.9 seen on real models): COCO-style consumers of the
    API and the keypoint JSON expect scores in [0, 1]."""
    net = StubNet()
    levels = torch.tensor([6.0, -6.0, 0.5] + [0.25] * 13)  # peaks on the network's grid

    def heatmap(size, grid):
        h, w = grid
        maps = torch.full((16, h, w), -2.0)
        maps[:, h // 2, w // 2] = levels
        return maps

    net.heatmap = heatmap
    result = Predictor(net, EvalConfig(input_size=(32, 24)), device="cpu")(torch.zeros(3, 32, 24, dtype=torch.uint8))
    scores = result.keypoint_scores
    assert float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0
    assert scores[0] == 1.0 and scores[1] == 0.0
