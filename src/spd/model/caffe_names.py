"""The TensorFlow variable names of DeepLab-v2's Caffe ResNet (JPPNet's backbone and the ImageNet
initialisation of DeepLab-ResNet-TensorFlow): ``conv1``, ``bn_conv1``, ``res{2..5}{a,b,c | b1..}_branch
{1,2a,2b,2c}`` and ``bn...``, batch norm as ``beta`` / ``gamma`` / ``moving_mean`` / ``moving_variance``."""

from __future__ import annotations

from torch import nn

from ..ops.state import WeightsError

BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def block_names(stage: int, blocks: int, depth: int = 101) -> list[str]:
    """Caffe ResNet block names: ResNet-101 (DeepLab-v2, JPPNet) has res2a..c, res3a, res3b1..b3,
    res4a, res4b1..b22, res5a..c; ResNet-50 lettered blocks throughout (res3a..d, res4a..f)."""
    if blocks <= 3 or depth == 50:
        return [f"{stage}{chr(ord('a') + i)}" for i in range(blocks)]
    return [f"{stage}a"] + [f"{stage}b{i}" for i in range(1, blocks)]


def conv_names(prefix: str, scope: str, kernel: str = "weights", bias: str | None = "biases") -> dict[str, str]:
    names = {f"{prefix}.weight": f"{scope}/{kernel}"}
    if bias:
        names[f"{prefix}.bias"] = f"{scope}/{bias}"
    return names


def bn_names(prefix: str, scope: str) -> dict[str, str]:
    return {f"{prefix}.{ours}": f"{scope}/{theirs}" for ours, theirs in BN.items()}


def caffe_resnet_names(resnet: nn.Module, depth: int, prefix: str = "") -> dict[str, str]:
    """State-dict key (under ``prefix``) -> Caffe / DeepLab-v2 TensorFlow variable name of a
    bottleneck ResNet with torchvision's module names (``conv1``, ``bn1``, ``layer1`` ...)."""
    if depth < 50:
        raise WeightsError(f"Caffe ResNet checkpoints hold bottleneck ResNets (50, 101), not ResNet-{depth}")
    names = {**conv_names(f"{prefix}conv1", "conv1", bias=None), **bn_names(f"{prefix}bn1", "bn_conv1")}
    for index in range(4):
        stage = getattr(resnet, f"layer{index + 1}")
        for block, name in enumerate(block_names(index + 2, len(stage), depth)):
            at = f"{prefix}layer{index + 1}.{block}"
            for conv, branch in (("1", "2a"), ("2", "2b"), ("3", "2c")):
                names |= conv_names(f"{at}.conv{conv}", f"res{name}_branch{branch}", bias=None)
                names |= bn_names(f"{at}.bn{conv}", f"bn{name}_branch{branch}")
            if stage[block].downsample is not None:
                names |= conv_names(f"{at}.downsample.0", f"res{name}_branch1", bias=None)
                names |= bn_names(f"{at}.downsample.1", f"bn{name}_branch1")
    return names


