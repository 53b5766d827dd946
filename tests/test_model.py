import urllib.error

import pytest
import torch
from torch import nn
from torchvision.models import resnet50

from spd.model import PRESETS, SPDNet, model_config, preset
from spd.model.encoders import ResNetEncoder
from spd.model.frozen_norm import FrozenStatsBatchNorm2d
from spd.model.pretrained import load_encoder_weights
from spd.model.resnet import DilatedResNet
from spd.ops.state import WeightsError

TINY_DILATED = {"depth": 18, "width": 0.125}
TINY_FPN = {"decoder_width": 16, "head_width": 16}
# A small dilated SPD for CPU tests (what the retired ``light`` preset was).
LIGHT = {"preset": "spd", "refine_stages": 1, "train_scales": [1.0],
         "dilated": {"depth": 18, "width": 0.25, "frozen_bn": False, "head_init": "kaiming"}}


def tiny(name: str, **fields):
    """A preset with the smallest trunk and heads of its family (schp's has one size)."""
    section = PRESETS[name].family
    if section == "schp":
        return model_config({"preset": name, **fields})
    return model_config({"preset": name, section: TINY_DILATED if section == "dilated" else TINY_FPN, **fields})


def conv(k, cin, cout):
    return k * k * cin * cout + cout


def jppnet_head_parameters():
    """Every head layer of the official JPPNet graph, counted by hand."""
    fc1_human = 4 * conv(3, 2048, 20)
    parsing_features = conv(3, 2048, 512) + conv(3, 512, 256)
    pose_net = (conv(3, 1024, 512) + conv(3, 512, 512) + conv(3, 512, 256) + 3 * conv(3, 256, 256)
                + conv(1, 256, 512) + conv(1, 512, 16))
    trunk = conv(3, 512, 512) + conv(5, 512, 256) + conv(7, 256, 256) + conv(9, 256, 256) + conv(1, 256, 256)
    pose_refine = conv(1, 16, 128) + conv(1, 20, 128) + trunk + conv(1, 256, 16)
    parsing_refine = conv(1, 20, 128) + conv(1, 16, 128) + trunk + 4 * conv(3, 256, 20)
    return fc1_human + parsing_features + pose_net + 2 * pose_refine + 2 * parsing_refine


def test_jppnet_has_the_official_layer_widths():
    model = SPDNet(preset("jppnet"))
    backbone = sum(p.numel() for p in model.trunk.parameters())
    heads = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("trunk."))
    assert backbone == 44_549_160 - (2048 * 1000 + 1000)  # torchvision ResNet-101 without its fc
    assert heads == jppnet_head_parameters()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_gives_shapes_and_gradients(name):
    scales = [1.0, 0.5] if len(PRESETS[name].train_scales) > 1 else [1.0]
    config = tiny(name, train_scales=scales)
    model = SPDNet(config)
    x = torch.randn(2, 3, 64, 48)
    out = model(x)
    assert len(out.stages) == config.refine_stages + 1
    final = out.final
    grid = (64 // model.output_stride, 48 // model.output_stride)  # 8 x 6 (dilated), 16 x 12 (fpn, schp)
    for task, attr, channels in (("parsing", "parsing", config.num_parsing_classes), ("pose", "pose", 16),
                                 ("densepose", "dp_index", 25)):
        value = getattr(final, attr)
        if task in config.tasks:
            assert value.shape == (2, channels, *grid), (task, value.shape)
        else:
            assert value is None
    if "densepose" in config.tasks:
        assert final.dp_uv.shape == (2, 2, 24, *grid) and 0 <= final.dp_uv.min() and final.dp_uv.max() <= 1
    if len(config.train_scales) > 1:
        assert out.scales[0.5][0].parsing.shape[-2:] == (4, 3)
    total = sum(t.float().mean() for s in out.stages for t in s.outputs.values())
    total.backward()
    for n, p in model.named_parameters():
        if p.requires_grad and not n.startswith("trunk"):
            assert p.grad is not None and torch.isfinite(p.grad).all(), n


@pytest.mark.parametrize("prefix", ["", "cpu_"])
def test_refinement_reads_the_configured_feeders(prefix):
    spd, s = SPDNet(tiny(f"{prefix}spd")), SPDNet(tiny(f"{prefix}s"))
    assert len(spd.refine[0]["parsing"].remaps) == 3  # own, pose, densepose
    assert len(s.refine[0]["parsing"].remaps) == 1
    assert [m[0].in_channels for m in spd.refine[0]["pose"].remaps] == [16, 20, 73]


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_encoders_give_the_strides_and_channels_they_declare(name):
    encoder = ResNetEncoder(name).eval()
    features = encoder(torch.randn(1, 3, 64, 96))
    assert [f.shape[1] for f in features] == list(encoder.channels)
    assert [(64 // f.shape[2], 96 // f.shape[3]) for f in features] == [(s, s) for s in encoder.strides]


@pytest.mark.parametrize("name", ["jppnet", "cpu_spd"])
def test_trunks_give_the_features_they_declare(name):
    """The heads read only the trunk's declaration: each declared map has its channels and stride."""
    model = SPDNet(tiny(name)).eval()
    features = model.trunk(torch.randn(1, 3, 64, 96))
    assert list(features) == [f.name for f in model.trunk.feature_info]
    for info in model.trunk.feature_info:
        assert features[info.name].shape[1:] == (info.channels, 64 // info.stride, 96 // info.stride)
        assert info.stride == model.output_stride


def test_cpu_family_decodes_to_the_finest_stride_with_the_chosen_encoder():
    model = SPDNet(model_config({"preset": "cpu_sp", "fpn": {"encoder": "resnet34", "decoder_width": 32,
                                                              "head_width": 16}})).eval()
    assert model.trunk.depth == 34
    out = model(torch.randn(1, 3, 96, 64))
    assert out.final.parsing.shape == (1, 20, 24, 16) and out.final.pose.shape == (1, 16, 24, 16)
    with pytest.raises(ValueError, match="model.fpn.encoder must be one of .* got 'vgg'"):
        model_config({"preset": "cpu_spd", "fpn": {"encoder": "vgg"}})


def test_bad_configs_name_the_key():
    with pytest.raises(ValueError, match="feeds"):
        preset("s", feeds={"parsing": ("pose",)})
    with pytest.raises(ValueError, match="tasks"):
        preset("s", tasks=("parsing", "depth"))
    with pytest.raises(KeyError, match="unknown model preset"):
        preset("deeplab")
    with pytest.raises(ValueError, match="model.dilated.head_init"):
        model_config({"preset": "spd", "dilated": {"head_init": "xavier"}})
    with pytest.raises(ValueError, match="exactly one family section"):
        model_config({"preset": "cpu_spd", "dilated": {"depth": 18}})
    # Keys of the flat model section before the family sections: the message gives the new name.
    with pytest.raises(ValueError, match="model.decoder_width was renamed model.fpn.decoder_width"):
        model_config({"preset": "cpu_spd", "decoder_width": 32})
    with pytest.raises(ValueError, match="model.scales was renamed model.train_scales"):
        model_config({"preset": "cpu_spd", "scales": [1.0]})


def test_he_initialised_heads_keep_the_signal_that_jppnet_initialisation_loses():
    """From scratch, N(0, 0.01) head weights shrink the signal at every conv of the pose trunk and
    the refinement stage; He initialisation keeps its scale, so the deepest outputs can learn."""
    x = torch.randn(2, 3, 64, 64)
    stds = {}
    for init in ("jppnet", "kaiming"):
        torch.manual_seed(0)
        model = SPDNet(model_config({**LIGHT, "dilated": {**LIGHT["dilated"], "head_init": init}})).eval()
        with torch.no_grad():
            stds[init] = model.forward_single(x)[-1]["pose"].std().item()
    assert stds["kaiming"] > 0.1
    assert stds["jppnet"] < 1e-3 * stds["kaiming"], stds


@pytest.mark.parametrize("stride", [8, 16])
def test_output_stride(stride):
    res4, res5 = DilatedResNet(18, stride)(torch.randn(1, 3, 64, 64))
    assert res4.shape[-1] == res5.shape[-1] == 64 // stride


def test_dilation_matches_torchvision_for_bottleneck_nets():
    ours = DilatedResNet(50, 8)
    ref = resnet50(replace_stride_with_dilation=[False, True, True])
    for name in ("layer3", "layer4"):
        a = [(m.stride, m.dilation, m.padding) for m in getattr(ours, name).modules() if isinstance(m, nn.Conv2d)]
        b = [(m.stride, m.dilation, m.padding) for m in getattr(ref, name).modules() if isinstance(m, nn.Conv2d)]
        assert a == b


def _random_statistics(module: nn.Module) -> None:
    for m in module.modules():
        if hasattr(m, "running_var"):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)


def test_frozen_bn_keeps_running_statistics_in_every_mode_but_trains_affine():
    """The freeze belongs to the layer, not to a mode flag: Lightning 2.x neither calls ``train()``
    nor ``eval()`` on the trunk when fitting starts, and after validation it assigns each module's
    ``training`` attribute back, so statistics frozen through ``train()`` were trained by every run."""
    encoder = DilatedResNet(18, 8, frozen_bn=True)
    _random_statistics(encoder)
    before = {k: v.clone() for k, v in encoder.state_dict().items() if "running" in k or "num_batches" in k}
    for module in encoder.modules():
        module.training = True  # as Lightning's _ModuleMode.restore sets it, bypassing train()
    sum(f.mean() for f in encoder(torch.randn(2, 3, 32, 32) * 5 + 3)).backward()
    encoder.train()
    encoder(torch.randn(2, 3, 32, 32) * 5 + 3)
    after = encoder.state_dict()
    assert len(before) == 60 and all(torch.equal(after[k], v) for k, v in before.items())
    assert encoder.bn1.weight.grad is not None and encoder.layer4[1].bn2.bias.grad is not None
    moving = DilatedResNet(18, 8, frozen_bn=False).train()
    moving(torch.randn(2, 3, 32, 32) * 5 + 3)
    assert not torch.equal(moving.bn1.running_mean, torch.zeros(64))


def test_frozen_bn_computes_batch_norm_in_eval_mode_and_loads_its_files():
    """The same function, bit for bit, as the BatchNorm2d it replaces in eval mode, with the same
    state-dict keys; a file without ``num_batches_tracked`` (torchvision's ImageNet ones) loads."""
    torch.manual_seed(0)
    plain = DilatedResNet(18, 8, frozen_bn=False, layout="caffe")
    _random_statistics(plain)
    for m in plain.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(-1, 1)
    frozen = DilatedResNet(18, 8, frozen_bn=True, layout="caffe")
    assert plain.state_dict().keys() == frozen.state_dict().keys()
    frozen.load_state_dict({k: v for k, v in plain.state_dict().items() if "num_batches" not in k}, strict=True)
    x = torch.randn(2, 3, 40, 32)
    assert all(torch.equal(a, b) for a, b in zip(plain.eval()(x), frozen.train()(x)))
    assert {m.eps for m in frozen.modules() if hasattr(m, "running_var")} == {1e-3}


def test_frozen_bn_is_left_alone_by_sync_batchnorm():
    """train.sync_batchnorm makes Lightning swap every ``_BatchNorm`` for a SyncBatchNorm, which trains
    its statistics: a frozen trunk's layers must not be swapped, a training one's must."""
    encoder = nn.SyncBatchNorm.convert_sync_batchnorm(DilatedResNet(18, 8, frozen_bn=True))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in encoder.modules())
    assert sum(isinstance(m, FrozenStatsBatchNorm2d) for m in encoder.modules()) == 20
    moving = nn.SyncBatchNorm.convert_sync_batchnorm(DilatedResNet(18, 8, frozen_bn=False))
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in moving.modules()) == 20


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_the_input_is_normalised_into_the_networks_dtype(dtype):
    """64-true converts the network (buffers included) to float64: its input must follow, or the
    first convolution fails on mixed types."""
    net = SPDNet(tiny("s", refine_stages=1, train_scales=[1.0])).to(dtype)
    images = torch.randint(0, 256, (1, 3, 32, 24), dtype=torch.uint8)
    x = net.normalise(images)
    assert x.dtype == dtype
    assert torch.allclose(x.double(), SPDNet(net.config).normalise(images).double(), atol=0.05)
    net(x)


@pytest.mark.parametrize("family", ["dilated", "fpn"])
def test_encoder_weights_from_a_local_file_for_every_family(tmp_path, family):
    """Weights attach through the trunk's declaration (its encoder, its layout and depth), whatever
    the family; a file for another depth is refused naming the key, a missing one naming the file."""
    source = SPDNet(tiny("spd" if family == "dilated" else "cpu_spd", **({"dilated": {**TINY_DILATED, "layout":
                                                                              "torchvision"}} if family == "dilated" else {})))
    state = {**source.trunk.encoder.state_dict(), "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pth")
    target = SPDNet(source.config)
    load_encoder_weights(target.trunk, tmp_path / "w.pth")
    assert torch.equal(target.trunk.encoder.layer4[1].conv2.weight, source.trunk.encoder.layer4[1].conv2.weight)
    bigger = model_config({"preset": "cpu_spd", "fpn": {"encoder": "resnet34"}}) if family == "fpn" else \
        model_config({"preset": "spd", "dilated": {"depth": 34, "layout": "torchvision"}})
    with pytest.raises(WeightsError, match="do not fit a ResNet-34 encoder.*missing 'layer1.2"):
        load_encoder_weights(SPDNet(bigger).trunk, tmp_path / "w.pth")
    with pytest.raises(WeightsError, match="not found"):
        load_encoder_weights(target.trunk, tmp_path / "none.pth")


@pytest.mark.parametrize("name", ["cpu_spd", "spd"])
def test_missing_imagenet_weights_say_where_to_put_them(tmp_path, monkeypatch, name):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    layout = {"dilated": {**TINY_DILATED, "layout": "torchvision"}} if name == "spd" else {}
    trunk = SPDNet(tiny(name, **layout)).trunk
    with pytest.raises(WeightsError, match=r"resnet18-f37072fd\.pth.*hub/checkpoints.*model.backbone_weights: "
                                           r"/path/to/resnet18-f37072fd\.pth"):
        load_encoder_weights(trunk, "imagenet", allow_download=False)
    # A node without internet access: the download fails at once, with the same recipe.
    def offline(url, dst, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError, match=r"could not download .*name resolution.*https://download.pytorch.org/models/"
                                           r"resnet18-f37072fd\.pth.*hub/checkpoints.*model.backbone_weights"):
        load_encoder_weights(trunk, "imagenet")
    # A file put where the message says is found.
    path = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(DilatedResNet(18).state_dict(), path)
    assert load_encoder_weights(trunk, "imagenet", allow_download=False) == str(path)
    # The caffe layout takes Caffe / TensorFlow weights, not torchvision's.
    with pytest.raises(WeightsError, match="fit the torchvision layout"):
        load_encoder_weights(SPDNet(tiny("spd")).trunk, "imagenet", allow_download=False)


def test_normalisation_is_recorded():
    model = SPDNet(model_config(LIGHT))
    meta = model.metadata()
    assert meta["normalisation"]["channel_order"] == "RGB" and meta["config"]["name"] == "spd"
    assert meta["version"] == 2 and meta["config"]["dilated"]["depth"] == 18
    x = model.normalise(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8))
    assert torch.allclose(x[0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]))


def test_forward_compiles_without_graph_breaks():
    model = SPDNet(tiny("spd", train_scales=[1.0, 0.5])).eval()
    explanation = torch._dynamo.explain(model)(torch.randn(1, 3, 64, 64))
    assert explanation.graph_break_count == 0, explanation.break_reasons


def test_channels_last_bf16_autocast_matches_float32():
    torch.manual_seed(0)
    model = SPDNet(model_config(LIGHT)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x).final
        fast_model = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = fast_model(x.to(memory_format=torch.channels_last)).final
    assert fast.parsing.dtype == torch.bfloat16 and fast.dp_uv.dtype == torch.float32
    assert torch.allclose(fast.parsing.float(), ref.parsing, atol=0.05 * ref.parsing.abs().max() + 1e-3)


@pytest.mark.parametrize("name,stages", [("spd", 0), ("s", 0), ("jppnet", 1), ("cpu_spd", 0), ("cpu_s", 1)])
def test_every_parameter_gets_a_gradient(name, stages):
    """DDP fails on a parameter that no output depends on. Without refinement stages, the dilated
    parsing branch's feature convs fed nothing (its output reads res5): they are not built."""
    net = SPDNet(tiny(name, refine_stages=stages, train_scales=[1.0]))
    out = net(torch.randn(2, 3, 48, 40))
    total = sum(getattr(stage, f).float().sum() for stage in out.stages
                for f in ("parsing", "pose", "dp_index", "dp_uv") if getattr(stage, f) is not None)
    total.backward()
    unused = [n for n, p in net.named_parameters() if p.grad is None]
    assert not unused, unused


def test_a_file_with_the_unused_parsing_feature_still_loads():
    """Model files of dilated models without refinement written before the unused feature convs
    were dropped hold their keys: they load, the keys left out."""
    from spd.weights.record import upgrade

    net = SPDNet(tiny("s", refine_stages=0, train_scales=[1.0]))
    state = {**net.state_dict(), "initial.parsing.feature.0.0.weight": torch.zeros(8, 64, 3, 3),
             "initial.parsing.feature.0.0.bias": torch.zeros(8)}
    record, upgraded = upgrade(net.metadata(), state, "old.safetensors")
    SPDNet(tiny("s", refine_stages=0, train_scales=[1.0])).load_state_dict(upgraded, strict=True)
    assert record == net.metadata()
