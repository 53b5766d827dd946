"""The jppnet preset computes JPPNet's official graph, and ``spd convert jppnet-tf`` reads the
official checkpoint format.

The golden file and the TensorFlow-written fixtures come from tools/jppnet_tf_graph.py, which
rebuilds the official graph in TensorFlow; nothing here needs TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from jppnet_golden import draw_weights, golden_input
from spd.cli.main import main
from spd.convert.jppnet_tf import (convert_variables, jppnet_model_config, official_names,
                                   official_protocol)
from spd.ops.tf_checkpoint import CheckpointFormatError, read_checkpoint, read_index, write_checkpoint
from spd.model import CAFFE_BGR, SPDNet, preset
from spd.model.resnet import DilatedResNet
from spd.ops.state import WeightsError
from spd.ops.tf import (SameConv2d, SameMaxPool2d, legacy_bilinear_resize, legacy_nearest_resize,
                              same_padding)
from spd.weights import load_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"


def official_variables() -> dict[str, tuple[int, ...]]:
    """The 624 variables of the official graph as TensorFlow built it (tools/jppnet_tf_graph.py)."""
    lines = (FIXTURES / "jppnet_tf_variables.txt").read_text().splitlines()
    return {name: tuple(int(d) for d in dims.split(",") if d) for name, dims in (line.split(" ") for line in lines)}


# --- the layout, layer by layer ----------------------------------------------------------------

def test_caffe_layout_strides_dilations_padding_and_epsilon():
    b = DilatedResNet(101, 8, layout="caffe")
    assert isinstance(b.conv1, SameConv2d) and b.conv1.stride == (2, 2) and b.conv1.padding == (0, 0)
    assert isinstance(b.maxpool, SameMaxPool2d)
    assert [len(s) for s in (b.layer1, b.layer2, b.layer3, b.layer4)] == [3, 4, 23, 3]
    first = b.layer2[0]  # res3a: the stride in the 1x1 branch2a and the shortcut, not in the 3x3
    assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1) and first.downsample[0].stride == (2, 2)
    for stage, dilation in ((b.layer1, 1), (b.layer2, 1), (b.layer3, 2), (b.layer4, 4)):
        for block in stage:  # every block, the first included
            assert block.conv2.dilation == (dilation, dilation) and block.conv2.padding == (dilation, dilation)
            assert block.conv3.stride == (1, 1)
    for block in (*b.layer3, *b.layer4):
        assert block.conv1.stride == (1, 1) and (block.downsample is None or block.downsample[0].stride == (1, 1))
    assert {m.eps for m in b.modules() if hasattr(m, "running_var")} == {1e-3}
    tv = DilatedResNet(101, 8, layout="torchvision")
    assert tv.layer2[0].conv2.stride == (2, 2) and tv.layer3[0].conv2.dilation == (1, 1)
    assert {m.eps for m in tv.modules() if hasattr(m, "running_var")} == {1e-5}
    assert {k: v.shape for k, v in b.state_dict().items()} == {k: v.shape for k, v in tv.state_dict().items()}


@pytest.mark.parametrize("hw, out", [((384, 384), (48, 48)), ((50, 42), (7, 6)), ((37, 31), (5, 4)), ((288, 288), (36, 36))])
def test_caffe_output_size_rounds_up_as_same_padding(hw, out):
    res4, res5 = DilatedResNet(50, 8, layout="caffe").eval()(torch.zeros(1, 3, *hw))
    assert tuple(res4.shape[-2:]) == out == tuple(res5.shape[-2:])


def test_same_padding_pads_the_extra_pixel_after():
    assert same_padding(384, 7, 2) == (2, 3) and same_padding(383, 7, 2) == (3, 3)  # conv1
    assert same_padding(192, 3, 2) == (0, 1) and same_padding(191, 3, 2) == (1, 1)  # pool1
    assert same_padding(96, 1, 2) == (0, 0) and same_padding(48, 3, 1, 2) == (2, 2)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 40), kernel=st.sampled_from([1, 3, 7]), stride=st.sampled_from([1, 2]),
       dilation=st.sampled_from([1, 2]))
def test_same_conv_is_conv_of_the_tf_padded_input(size, kernel, stride, dilation):
    torch.manual_seed(size)
    conv = SameConv2d(2, 3, kernel, stride, padding=0, dilation=dilation)
    x = torch.randn(1, 2, size, size + 1)
    (top, bottom), (left, right) = same_padding(size, kernel, stride, dilation), same_padding(size + 1, kernel, stride, dilation)
    expected = F.conv2d(F.pad(x, (left, right, top, bottom)), conv.weight, conv.bias, stride, 0, dilation)
    out = conv(x)
    assert out.shape[-2:] == (math.ceil(size / stride), math.ceil((size + 1) / stride))
    torch.testing.assert_close(out, expected)


def test_same_max_pool_never_takes_the_padding():
    x = -torch.ones(1, 1, 4, 4)  # all negative: a zero-padded pool would return 0 at the border
    out = SameMaxPool2d(3, 2)(x)
    assert out.shape[-2:] == (2, 2) and bool((out == -1).all())


# --- TF1's legacy resizes, against values computed by hand --------------------------------------

def test_legacy_bilinear_samples_at_i_times_in_over_out():
    x = torch.arange(4.0).view(1, 1, 1, 4)
    # out 3: coordinates 0, 4/3, 8/3 -> values there (no half-pixel shift)
    torch.testing.assert_close(legacy_bilinear_resize(x, (1, 3))[0, 0, 0], torch.tensor([0.0, 4 / 3, 8 / 3]))
    # out 8 of 4: 0, .5, 1, ..., 3, 3.5 -> the last clamps to the border value
    torch.testing.assert_close(legacy_bilinear_resize(x, (1, 8))[0, 0, 0],
                               torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0]))
    # rows and columns independently: a 2x2 ramp to 3x3
    y = torch.tensor([[0.0, 10.0], [20.0, 30.0]]).view(1, 1, 2, 2)
    torch.testing.assert_close(legacy_bilinear_resize(y, (3, 3))[0, 0],
                               torch.tensor([[0.0, 20 / 3, 10.0], [40 / 3, 60 / 3, 70 / 3], [20.0, 80 / 3, 30.0]]))


def test_legacy_resize_indices_are_cached_and_survive_inference_mode():
    """The index tensors are made once per (sizes, device); those first made under inference mode
    (validation, the Predictor) must still serve a training step's backward."""
    from spd.ops import tf

    tf._cached_axis.cache_clear()
    with torch.inference_mode():
        legacy_bilinear_resize(torch.rand(1, 1, 7, 5), (11, 13))
    x = torch.rand(1, 2, 7, 5, requires_grad=True)
    legacy_bilinear_resize(x, (11, 13)).sum().backward()  # raised: inference tensors saved for backward
    assert x.grad is not None and tf._cached_axis.cache_info().hits == 2
    assert tf._legacy_axis(x, 7, 11)[0] is tf._legacy_axis(x, 7, 11)[0]
    # The memory estimate's fake tensors must not meet the cached real ones (an error in fake mode).
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        assert legacy_bilinear_resize(torch.rand(1, 2, 7, 5), (11, 13)).shape == (1, 2, 11, 13)
        assert legacy_nearest_resize(torch.zeros(1, 1, 7, 5, dtype=torch.uint8), (11, 13)).shape == (1, 1, 11, 13)


def _graph_nodes(tensor: torch.Tensor) -> set[str]:
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and node.name() not in seen:
            seen.add(node.name())
            stack.extend(n for n, _ in node.next_functions)
    return seen


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), oh=st.integers(1, 13), ow=st.integers(1, 13))
def test_legacy_resizes_select_indices_with_the_gradients_of_advanced_indexing(h, w, oh, ow):
    """The resizes gather with index_select (whose CUDA backward is an index_add), not advanced
    indexing (a sort-based index_put): the same values and the same gradients as the advanced-indexing
    form they replace, written out here."""
    from spd.ops import tf

    def by_advanced_indexing(x, size):
        y0, y1, wy = tf._axis(x.shape[-2], size[0], x.device)
        x0, x1, wx = tf._axis(x.shape[-1], size[1], x.device)
        top, bottom = x[..., y0, :], x[..., y1, :]
        rows = top + (bottom - top) * wy[:, None]
        return rows[..., x0] + (rows[..., x1] - rows[..., x0]) * wx

    torch.manual_seed(h * 100 + w)
    x = torch.randn(2, 3, h, w, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 3, oh, ow, dtype=torch.float64)
    ours = tf.legacy_bilinear_resize(x, (oh, ow))
    if (h, w) != (oh, ow):
        assert "IndexBackward0" not in _graph_nodes(ours) and "IndexSelectBackward0" in _graph_nodes(ours)
    (grad,) = torch.autograd.grad((ours * weights).sum(), x)
    reference = by_advanced_indexing(x, (oh, ow))
    (expected,) = torch.autograd.grad((reference * weights).sum(), x)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)
    nearest = tf.legacy_nearest_resize(x, (oh, ow))
    rows, cols = tf._axis(h, oh, x.device)[0], tf._axis(w, ow, x.device)[0]
    assert torch.equal(nearest, x[..., rows, :][..., cols]) and "IndexBackward0" not in _graph_nodes(nearest)


def test_legacy_nearest_takes_the_top_left_cell():
    x = torch.arange(4.0).view(1, 1, 1, 4)
    assert legacy_nearest_resize(x, (1, 3))[0, 0, 0].tolist() == [0.0, 1.0, 2.0]  # floor(0, 1.33, 2.67)
    assert legacy_nearest_resize(x, (1, 6))[0, 0, 0].tolist() == [0.0, 0.0, 1.0, 2.0, 2.0, 3.0]  # floor(i * 2/3)
    assert legacy_nearest_resize(x[..., :3], (1, 4))[0, 0, 0].tolist() == [0.0, 0.0, 1.0, 2.0]  # floor(i * .75)


# --- the TensorFlow checkpoint format --------------------------------------------------------------

def test_reads_a_checkpoint_written_by_tensorflow():
    tensors = read_checkpoint(FIXTURES / "tf_small.ckpt")
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(tensors["scope/kernel"], rng.standard_normal((3, 3, 2, 4)).astype(np.float32))
    np.testing.assert_array_equal(tensors["scope/bias"], np.arange(4, dtype=np.float32))
    assert tensors["count"].dtype == np.int64 and tensors["count"].shape == () and int(tensors["count"]) == 7
    np.testing.assert_array_equal(tensors["half"], np.linspace(-1, 1, 5).astype(np.float16))
    np.testing.assert_array_equal(tensors["ids"], np.arange(6, dtype=np.int32).reshape(2, 3))


def test_written_checkpoint_reads_back_byte_for_byte_as_tensorflow_writes_entries(tmp_path):
    tf_written = read_checkpoint(FIXTURES / "tf_small.ckpt")
    write_checkpoint(tmp_path / "copy", tf_written)
    again = read_checkpoint(tmp_path / "copy")
    assert again.keys() == tf_written.keys()
    for name in tf_written:
        assert again[name].dtype == tf_written[name].dtype
        np.testing.assert_array_equal(again[name], tf_written[name])
    # Same data layout as TensorFlow's (sorted names, contiguous): the data shards are identical.
    assert (tmp_path / "copy.data-00000-of-00001").read_bytes() == \
        (FIXTURES / "tf_small.ckpt.data-00000-of-00001").read_bytes()
    assert {k: (e.offset, e.size, e.crc32c) for k, e in read_index(tmp_path / "copy").items()} == \
        {k: (e.offset, e.size, e.crc32c) for k, e in read_index(FIXTURES / "tf_small.ckpt").items()}


def test_damaged_checkpoints_are_refused_naming_the_file_or_variable(tmp_path):
    write_checkpoint(tmp_path / "m", {"a/w": np.ones((2, 2), np.float32), "b": np.zeros(3, np.float32)})
    data = tmp_path / "m.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[1] ^= 0xFF  # inside a/w
    data.write_bytes(bytes(raw))
    with pytest.raises(CheckpointFormatError, match="'a/w' is corrupt"):
        read_checkpoint(tmp_path / "m")
    data.write_bytes(bytes(raw[:10]))
    with pytest.raises(CheckpointFormatError, match="past the end"):
        read_checkpoint(tmp_path / "m")
    data.unlink()
    with pytest.raises(FileNotFoundError, match="data shard"):
        read_checkpoint(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="checkpoint prefix"):
        read_checkpoint(tmp_path / "absent")
    (tmp_path / "junk.index").write_bytes(b"not a table" * 10)
    with pytest.raises(CheckpointFormatError, match="junk.index: not a TensorFlow checkpoint index"):
        read_checkpoint(tmp_path / "junk")
    index = bytearray((tmp_path / "m.index").read_bytes())
    index[12] ^= 0xFF
    (tmp_path / "m.index").write_bytes(bytes(index))
    with pytest.raises(CheckpointFormatError, match="checksum"):
        read_index(tmp_path / "m")


# --- the variable mapping ------------------------------------------------------------------------

def test_the_mapping_covers_exactly_the_official_variables_with_their_shapes():
    model = SPDNet(jppnet_model_config())
    names = official_names(model)
    official = official_variables()
    assert len(official) == 624 and sorted(names.values()) == sorted(official)
    state = model.state_dict()
    for key, name in names.items():
        shape = official[name]
        expected = (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape
        assert tuple(state[key].shape) == expected, name
    assert sum(int(np.prod(s)) for n, s in official.items() if "moving_" not in n) == 122_049_120


def _small_variables() -> tuple[dict[str, np.ndarray], object]:
    """A structurally identical, smaller model's variables (fast to build) under official names."""
    config = replace(jppnet_model_config(), dilated=replace(jppnet_model_config().dilated, depth=50, width=0.125))
    model = SPDNet(config)
    state = model.state_dict()
    variables = {}
    for key, name in official_names(model).items():
        value = state[key].numpy()
        variables[name] = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
    return variables, config


def test_unknown_missing_and_misshapen_variables_are_named():
    variables, config = _small_variables()
    converted = convert_variables(dict(variables), config=config)
    assert converted.normalisation == CAFFE_BGR
    ok = dict(variables, **{"global_step": np.array(5), "fc1_pose/pose_conv1/w/Momentum": np.zeros(1)})
    convert_variables(ok, config=config)  # optimiser leftovers are not the model
    with pytest.raises(WeightsError, match="unknown variable.*fc9_pose/extra/w"):
        convert_variables(dict(variables, **{"fc9_pose/extra/w": np.zeros(1, np.float32)}), config=config)
    missing = dict(variables)
    del missing["fc2_parsing/parsing_human3/b"]
    with pytest.raises(WeightsError, match="missing variable.*fc2_parsing/parsing_human3/b"):
        convert_variables(missing, config=config)
    wrong = dict(variables, **{"bn_conv1/gamma": np.ones(3, np.float32)})
    with pytest.raises(WeightsError, match=r"'bn_conv1/gamma' has shape \(3,\), expected \(64,\)"):
        convert_variables(wrong, config=config)


def test_caffe_normalisation_reverses_channels_and_subtracts_the_mean():
    model = SPDNet(preset("cpu_s"), CAFFE_BGR)
    rgb = torch.tensor([10, 20, 30], dtype=torch.uint8).view(1, 3, 1, 1)
    out = model.normalise(rgb).flatten().tolist()
    assert out == pytest.approx([30 - 104.00698793, 20 - 116.66876762, 10 - 122.67891434])


# --- the official function: golden outputs of the TensorFlow graph --------------------------------

def _compare_with_golden(model: SPDNet) -> float:
    golden = np.load(FIXTURES / "jppnet_golden.npz")
    x = torch.from_numpy(golden_input()).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        out = model(x)
    worst = 0.0
    for key in golden.files:  # e.g. "pose/stage2/scale0.75", "parsing/stage0/fused"
        task, stage, scale = key.split("/")
        stages = out.stages if scale == "fused" else out.scales[float(scale.removeprefix("scale"))]
        ours, ref = getattr(stages[int(stage.removeprefix("stage"))], task).numpy(), golden[key]
        assert ours.shape == ref.shape, key
        worst = max(worst, float(np.abs(ours - ref).max() / np.abs(ref).max()))
    assert len(golden.files) == 24  # 2 tasks x 3 stages x (3 scales + fused)
    return worst


def test_converted_official_checkpoint_reproduces_the_tensorflow_graph(tmp_path):
    """All 624 variables through a checkpoint file, ``spd convert``, the weights file and the loader;
    every stage at every scale and fused within 1e-4 of the official graph's outputs."""
    prefix = tmp_path / "model.ckpt-1"
    write_checkpoint(prefix, draw_weights(official_variables()))
    out = tmp_path / "jppnet_official.safetensors"
    try:
        assert main(["convert", "jppnet-tf", str(prefix), "--out", str(out)]) == 0
        for f in tmp_path.glob("model.ckpt-1.*"):
            f.unlink()  # the test's disk footprint: one copy of the weights at a time
        assert main(["convert", "jppnet-tf", str(prefix), "--out", str(out)]) == 2  # exists, not replaced
        loaded = load_checkpoint(out)
        assert loaded.model.config.dilated.layout == "caffe" and loaded.model.normalisation == CAFFE_BGR
        assert loaded.protocol == official_protocol()
        assert _compare_with_golden(loaded.model) < 1e-4
        # The same weights in torchvision's layout are another function: the test can fail.
        other = SPDNet(replace(loaded.model.config, dilated=replace(loaded.model.config.dilated, layout="torchvision")), CAFFE_BGR)
        other.load_state_dict(loaded.model.state_dict())
        with pytest.raises(AssertionError):
            assert _compare_with_golden(other.eval()) < 1e-2
    finally:
        out.unlink(missing_ok=True)


# --- the official test protocol ----------------------------------------------------------------

def test_jppnet_pose_decoder_is_the_official_nearest_resize_and_integer_argmax():
    """As evaluate_pose_JPPNet-s2.py: each scale's heatmaps (of the image and of its mirror)
    nearest-resized to the original size and averaged, the mirror's flipped back at full size with
    its joint pairs swapped, then numpy's argmax per joint."""
    from spd.inference import EvalConfig
    from spd.labels import keypoint_space
    from spd.inference.decode import decode_views
    from spd.inference.views import Views, _unflip
    from spd.inference.placement import place

    g = torch.Generator().manual_seed(3)
    height, width, joints = 37, 29, keypoint_space()
    perm = joints.flip_permutation
    shapes = [(4, 4), (6, 5)]  # the network's output at two scales
    placements = [place(height, width, (8 * h, 8 * w), "squash") for h, w in shapes]
    direct = [torch.randn(16, h, w, generator=g, dtype=torch.float64) for h, w in shapes]
    of_mirror = [torch.randn(16, h, w, generator=g, dtype=torch.float64) for h, w in shapes]  # mirror image's outputs
    views = Views(placements=placements, views={"pose": 2}, maps={"pose": direct},
                  mirrored={"pose": [_unflip(m[None], torch.tensor(perm))[0] for m in of_mirror]})
    protocol = EvalConfig(input_size=(32, 32), scales=(1.0, 1.25), flip=True, pose_decoder="jppnet")
    ours = decode_views(views, protocol, ("background",), joints.joints).keypoints

    full = lambda maps: torch.stack([legacy_nearest_resize(m[None], (height, width))[0] for m in maps]).mean(0)
    mirror = full(of_mirror)[list(perm)].flip(-1)
    official = ((full(direct) + mirror) / 2).flatten(1).numpy()
    expected = [(int(i) % width, int(i) // width) for i in np.argmax(official, axis=1)]
    assert [tuple(map(int, p)) for p in ours.tolist()] == expected


def test_heads_start_as_the_official_code_initialises_them():
    model = SPDNet(jppnet_model_config())
    pose_conv = model.initial["pose"].feature[0][0]  # conv2d helper: truncated normal, std 0.01, bias 0
    w = pose_conv.weight.detach()
    assert float(w.abs().max()) <= 0.02 and abs(float(w.std()) - 0.0088) < 0.001  # std of N(0, .01) cut at 2 std
    assert float(pose_conv.bias.abs().max()) == 0.0
    fc1 = model.initial["parsing"].out.head.branches[0]  # no initialiser: Glorot uniform, biases too
    limit = math.sqrt(6 / (2048 * 9 + 20 * 9))
    assert float(fc1.weight.abs().max()) <= limit and float(fc1.weight.abs().max()) > 0.9 * limit
    assert 0 < float(fc1.bias.abs().max()) <= math.sqrt(3 / 20)
    conv = model.trunk.encoder.layer1[0].conv2  # kaffe conv without an initialiser: Glorot uniform
    assert float(conv.weight.abs().max()) <= math.sqrt(6 / (64 * 9 * 2))


def test_official_test_protocol_end_to_end_on_a_stub_network():
    """JPPNet's evaluation written out with TF1's legacy resizes, against the Predictor with
    interpolation tf_legacy and the jppnet pose decoder: the image and its mirror resized to each
    scale, every stage's parsing logits (stage 3's heatmaps) resized to the original size and
    averaged over scales, the mirror's swapped and flipped at full size, then the argmax."""
    from predict_helpers import StubNet

    from spd.inference import EvalConfig
    from spd.labels import keypoint_space, label_space
    from spd.predict.predictor import Predictor

    stub = StubNet(seed=5)
    image = torch.randint(0, 256, (3, 37, 29), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    protocol = EvalConfig(input_size=(32, 24), scales=(0.75, 1.0, 1.25), flip=True, stages="all", resize="squash",
                     pose_decoder="jppnet", interpolation="tf_legacy")
    ours = Predictor(stub, protocol, device="cpu")(image)

    size = tuple(image.shape[-2:])
    parsing = {False: 0.0, True: 0.0}
    pose = {False: 0.0, True: 0.0}
    with torch.no_grad():
        for s in protocol.scales:
            canvas = (int(32 * s), int(24 * s))
            for mirrored in (False, True):
                x = legacy_bilinear_resize(stub.normalise((image.flip(-1) if mirrored else image)[None]), canvas)
                stages = stub.predict_stages(x)
                logits = torch.stack([st.parsing for st in stages]).mean(0)
                parsing[mirrored] = parsing[mirrored] + legacy_bilinear_resize(logits, size)[0]
                pose[mirrored] = pose[mirrored] + legacy_nearest_resize(stages[-1].pose, size)[0]
    classes, joints = label_space("lip").flip_permutation, keypoint_space().flip_permutation
    expected_parsing = (parsing[False] + parsing[True][list(classes)].flip(-1)).argmax(0)
    heat = (pose[False] + pose[True][list(joints)].flip(-1)).flatten(1).numpy()
    expected_keypoints = [(int(i) % size[1], int(i) // size[1]) for i in np.argmax(heat, axis=1)]
    assert (ours.parsing.long() == expected_parsing).float().mean().item() == 1.0
    assert [tuple(map(int, p)) for p in ours.keypoints.tolist()] == expected_keypoints


def test_backbone_initialises_from_a_deeplab_tensorflow_checkpoint(tmp_path):
    """model.backbone_weights may name a TensorFlow checkpoint of a Caffe ResNet (DeepLab-v2's
    ImageNet initialisation, as JPPNet trained from): its other variables are left alone."""
    from spd.model import model_config
    from spd.model.caffe_names import caffe_resnet_names
    from spd.model.pretrained import load_encoder_weights

    def trunk(layout: str):
        return SPDNet(model_config({"preset": "s", "dilated": {"depth": 50, "layout": layout, "width": 0.125}})).trunk

    torch.manual_seed(0)
    source = trunk("caffe")
    for m in source.modules():
        if hasattr(m, "running_var"):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    names = caffe_resnet_names(source.encoder, 50)
    assert "res4f_branch2c/weights" in names.values() and "res3d_branch2a/weights" in names.values()  # ResNet-50 letters
    state = source.encoder.state_dict()
    variables = {name: (state[key].permute(2, 3, 1, 0) if state[key].dim() == 4 else state[key]).numpy()
                 for key, name in names.items()}
    write_checkpoint(tmp_path / "init.ckpt", {**variables, "fc1_voc12_c0/weights": np.zeros((3, 3, 8, 2), np.float32)})
    target = trunk("caffe")
    assert "TensorFlow checkpoint" in load_encoder_weights(target, tmp_path / "init.ckpt")
    for key, value in target.encoder.state_dict().items():
        assert torch.equal(value, state[key]) or key.endswith("num_batches_tracked"), key
    with pytest.raises(WeightsError, match="caffe layout"):
        load_encoder_weights(trunk("torchvision"), tmp_path / "init.ckpt")
    del variables["bn5c_branch2b/moving_variance"]
    write_checkpoint(tmp_path / "short.ckpt", variables)
    with pytest.raises(WeightsError, match="missing variable.*bn5c_branch2b/moving_variance"):
        load_encoder_weights(trunk("caffe"), tmp_path / "short.ckpt")
