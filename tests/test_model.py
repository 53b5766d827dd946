import pytest
import torch
from torch import nn
from torchvision.models import resnet50

from spd.model import PRESETS, SPDNet, preset
from spd.model.backbone import Backbone
from spd.model.encoders import ENCODERS, Encoder
from spd.model.weights import WeightsError, load_backbone_weights

TINY = dict(depth=18, width=0.125)


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
    backbone = sum(p.numel() for p in model.backbone.parameters())
    heads = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("backbone."))
    assert backbone == 44_549_160 - (2048 * 1000 + 1000)  # torchvision ResNet-101 without its fc
    assert heads == jppnet_head_parameters()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_gives_shapes_and_gradients(name):
    config = preset(name, **TINY, scales=(1.0, 0.5) if len(PRESETS[name].scales) > 1 else (1.0,))
    model = SPDNet(config)
    x = torch.randn(2, 3, 64, 48)
    out = model(x)
    assert len(out.stages) == config.refine_stages + 1
    final = out.final
    grid = (64 // config.output_stride, 48 // config.output_stride)  # 8 x 6 (dilated), 16 x 12 (fpn)
    for task, attr, channels in (("parsing", "parsing", 20), ("pose", "pose", 16), ("densepose", "dp_index", 25)):
        value = getattr(final, attr)
        if task in config.tasks:
            assert value.shape == (2, channels, *grid), (task, value.shape)
        else:
            assert value is None
    if "densepose" in config.tasks:
        assert final.dp_uv.shape == (2, 2, 24, *grid) and 0 <= final.dp_uv.min() and final.dp_uv.max() <= 1
    if len(config.scales) > 1:
        assert out.scales[0.5][0].parsing.shape[-2:] == (4, 3)
    total = sum(t.float().mean() for s in out.stages for t in vars(s).values() if t is not None)
    total.backward()
    for n, p in model.named_parameters():
        if p.requires_grad and not n.startswith("backbone"):
            assert p.grad is not None and torch.isfinite(p.grad).all(), n


@pytest.mark.parametrize("prefix", ["", "cpu_"])
def test_refinement_reads_the_configured_feeders(prefix):
    spd, s = SPDNet(preset(f"{prefix}spd", **TINY)), SPDNet(preset(f"{prefix}s", **TINY))
    assert len(spd.refine[0]["parsing"].remaps) == 3  # own, pose, densepose
    assert len(s.refine[0]["parsing"].remaps) == 1
    assert [m[0].in_channels for m in spd.refine[0]["pose"].remaps] == [16, 20, 73]


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encoders_give_the_strides_and_channels_they_declare(name):
    encoder = Encoder(name).eval()
    features = encoder(torch.randn(1, 3, 64, 96))
    spec = ENCODERS[name]
    assert [f.shape[1] for f in features] == list(spec.channels)
    assert [(64 // f.shape[2], 96 // f.shape[3]) for f in features] == [(s, s) for s in spec.strides]


def test_cpu_family_decodes_to_the_finest_stride_with_the_chosen_encoder():
    model = SPDNet(preset("cpu_sp", backbone="resnet34", decoder_width=32, head_width=16)).eval()
    assert isinstance(model.backbone, Encoder) and model.backbone.name == "resnet34"
    out = model(torch.randn(1, 3, 96, 64))
    assert out.final.parsing.shape == (1, 20, 24, 16) and out.final.pose.shape == (1, 16, 24, 16)
    # The stride is the encoder's, stated in the config: a mismatch is an error naming it.
    with pytest.raises(ValueError, match="output_stride 8"):
        preset("cpu_spd", output_stride=8)
    with pytest.raises(ValueError, match="unknown model backbone 'vgg'"):
        preset("cpu_spd", backbone="vgg")
    with pytest.raises(ValueError, match="family"):
        preset("cpu_spd", family="unet")


def test_bad_configs_name_the_key():
    with pytest.raises(ValueError, match="feeds"):
        preset("s", feeds={"parsing": ("pose",)})
    with pytest.raises(ValueError, match="tasks"):
        preset("s", tasks=("parsing", "depth"))
    with pytest.raises(KeyError, match="unknown model preset"):
        preset("deeplab")
    with pytest.raises(ValueError, match="head_init"):
        preset("light", head_init="xavier")


def test_he_initialised_heads_keep_the_signal_that_jppnet_initialisation_loses():
    """From scratch, N(0, 0.01) head weights shrink the signal at every conv of the pose trunk and
    the refinement stage; He initialisation keeps its scale, so the deepest outputs can learn."""
    x = torch.randn(2, 3, 64, 64)
    stds = {}
    for init in ("jppnet", "kaiming"):
        torch.manual_seed(0)
        model = SPDNet(preset("light", head_init=init)).eval()
        with torch.no_grad():
            stds[init] = model.forward_single(x)[-1]["pose"].std().item()
    assert stds["kaiming"] > 0.1
    assert stds["jppnet"] < 1e-3 * stds["kaiming"], stds


@pytest.mark.parametrize("stride", [8, 16])
def test_output_stride(stride):
    res4, res5 = Backbone(18, stride)(torch.randn(1, 3, 64, 64))
    assert res4.shape[-1] == res5.shape[-1] == 64 // stride


def test_dilation_matches_torchvision_for_bottleneck_nets():
    ours = Backbone(50, 8)
    ref = resnet50(replace_stride_with_dilation=[False, True, True])
    for name in ("layer3", "layer4"):
        a = [(m.stride, m.dilation, m.padding) for m in getattr(ours, name).modules() if isinstance(m, nn.Conv2d)]
        b = [(m.stride, m.dilation, m.padding) for m in getattr(ref, name).modules() if isinstance(m, nn.Conv2d)]
        assert a == b


def test_frozen_bn_keeps_running_statistics_but_trains_affine():
    backbone = Backbone(18, 8, frozen_bn=True).train()
    bn = backbone.bn1
    before = bn.running_mean.clone()
    sum(f.mean() for f in backbone(torch.randn(2, 3, 32, 32) * 5 + 3)).backward()
    assert not bn.training and torch.equal(bn.running_mean, before)
    assert bn.weight.grad is not None
    moving = Backbone(18, 8, frozen_bn=False).train()
    moving(torch.randn(2, 3, 32, 32) * 5 + 3)
    assert not torch.equal(moving.bn1.running_mean, torch.zeros(64))


def test_weights_from_a_local_file(tmp_path):
    source = Backbone(18)
    state = {**source.state_dict(), "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pth")
    target = Backbone(18)
    load_backbone_weights(target, tmp_path / "w.pth")
    assert torch.equal(target.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    with pytest.raises(WeightsError, match="does not fit a ResNet-34"):
        load_backbone_weights(Backbone(34), tmp_path / "w.pth")
    with pytest.raises(WeightsError, match="not found"):
        load_backbone_weights(target, tmp_path / "none.pth")


def test_missing_imagenet_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match=r"resnet18-f37072fd\.pth.*hub/checkpoints"):
        load_backbone_weights(Backbone(18), "imagenet", allow_download=False)
    # A file put where the message says is found.
    path = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(Backbone(18).state_dict(), path)
    assert load_backbone_weights(Backbone(18), "imagenet", allow_download=False) == str(path)


def test_normalisation_is_recorded():
    model = SPDNet(preset("light"))
    meta = model.metadata()
    assert meta["normalisation"]["channel_order"] == "RGB" and meta["config"]["name"] == "light"
    x = model.normalise(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8))
    assert torch.allclose(x[0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]))


def test_forward_compiles_without_graph_breaks():
    model = SPDNet(preset("spd", **TINY, scales=(1.0, 0.5))).eval()
    explanation = torch._dynamo.explain(model)(torch.randn(1, 3, 64, 64))
    assert explanation.graph_break_count == 0, explanation.break_reasons


def test_channels_last_bf16_autocast_matches_float32():
    torch.manual_seed(0)
    model = SPDNet(preset("light")).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x).final
        fast_model = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = fast_model(x.to(memory_format=torch.channels_last)).final
    assert fast.parsing.dtype == torch.bfloat16
    assert torch.allclose(fast.parsing.float(), ref.parsing, atol=0.05 * ref.parsing.abs().max() + 1e-3)


def test_build_model_loads_backbone_weights(tmp_path):
    from spd.model import build_model

    source = Backbone(18)
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    model = build_model(preset("light"), tmp_path / "r18.pth")
    assert torch.equal(model.backbone.conv1.weight, source.conv1.weight)
