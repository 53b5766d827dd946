"""The official JPPNet TensorFlow checkpoint -> the ``jppnet`` preset.

Variable names follow the official scopes: the backbone as DeepLab-v2's Caffe ResNet-101
(``conv1``, ``bn_conv1``, ``res{2..5}{a,b,c | b1..}_branch{1,2a,2b,2c}`` and ``bn...``, batch norm
as ``beta`` / ``gamma`` / ``moving_mean`` / ``moving_variance``), the parsing head (``fc1_human_c0..3``,
``res5d_branch2{a,b}_parsing``; ``weights`` / ``biases``), pose and refinement (``fc1_pose/pose_conv1..8``,
``fc{2,3}_pose/{pose,parsing}_remap, conv1..6``, ``fc{2,3}_parsing/{parsing,pose}_remap,
parsing_conv1..5, parsing_human1..4``; ``w`` / ``b``). TensorFlow kernels are [kh, kw, in, out];
PyTorch's are [out, in, kh, kw].
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..config.schema import EvalConfig
from ..model import CAFFE_BGR, SPDNet, preset
from ..model.backbone import Backbone
from ..model.config import ModelConfig
from .tf_checkpoint import read_checkpoint

# Training leftovers a checkpoint may also hold; they are not part of the model.
IGNORED_SUFFIXES = ("/Momentum",)
IGNORED_NAMES = ("global_step",)
BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


class ConversionError(ValueError):
    pass


def block_names(stage: int, blocks: int, depth: int = 101) -> list[str]:
    """Caffe ResNet block names: ResNet-101 (DeepLab-v2, JPPNet) has res2a..c, res3a, res3b1..b3,
    res4a, res4b1..b22, res5a..c; ResNet-50 lettered blocks throughout (res3a..d, res4a..f)."""
    if blocks <= 3 or depth == 50:
        return [f"{stage}{chr(ord('a') + i)}" for i in range(blocks)]
    return [f"{stage}a"] + [f"{stage}b{i}" for i in range(1, blocks)]


def _conv(prefix: str, scope: str, kernel: str = "weights", bias: str | None = "biases") -> dict[str, str]:
    names = {f"{prefix}.weight": f"{scope}/{kernel}"}
    if bias:
        names[f"{prefix}.bias"] = f"{scope}/{bias}"
    return names


def _bn(prefix: str, scope: str) -> dict[str, str]:
    return {f"{prefix}.{ours}": f"{scope}/{theirs}" for ours, theirs in BN.items()}


def backbone_names(backbone: Backbone, prefix: str = "backbone.") -> dict[str, str]:
    """State-dict key -> Caffe / DeepLab-v2 TensorFlow variable name of a bottleneck ResNet."""
    if backbone.depth < 50:
        raise ConversionError(f"Caffe ResNet checkpoints hold bottleneck ResNets (50, 101), not ResNet-{backbone.depth}")
    names = {**_conv(f"{prefix}conv1", "conv1", bias=None), **_bn(f"{prefix}bn1", "bn_conv1")}
    for index in range(4):
        stage = getattr(backbone, f"layer{index + 1}")
        for block, name in enumerate(block_names(index + 2, len(stage), backbone.depth)):
            at = f"{prefix}layer{index + 1}.{block}"
            for conv, branch in (("1", "2a"), ("2", "2b"), ("3", "2c")):
                names |= _conv(f"{at}.conv{conv}", f"res{name}_branch{branch}", bias=None)
                names |= _bn(f"{at}.bn{conv}", f"bn{name}_branch{branch}")
            if stage[block].downsample is not None:
                names |= _conv(f"{at}.downsample.0", f"res{name}_branch1", bias=None)
                names |= _bn(f"{at}.downsample.1", f"bn{name}_branch1")
    return names


def _head(prefix: str, scope: str) -> dict[str, str]:
    """A head conv of the official ``conv2d`` helper: variables ``w`` and ``b``."""
    return _conv(prefix, scope, "w", "b")


def _summed(prefix: str, scopes: list[str], kernel: str, bias: str) -> dict[str, str]:
    """The summed dilated convs of a parsing output (:class:`~spd.model.layers.DilatedSum`)."""
    return {k: v for i, scope in enumerate(scopes) for k, v in _conv(f"{prefix}.branches.{i}", scope, kernel, bias).items()}


def _heads(model: SPDNet) -> dict[str, str]:
    names = _summed("initial.parsing.out.head", [f"fc1_human_c{i}" for i in range(4)], "weights", "biases")
    for i, s in enumerate("ab"):
        names |= _conv(f"initial.parsing.feature.{i}.0", f"res5d_branch2{s}_parsing")
    for i in range(6):
        names |= _head(f"initial.pose.feature.{i}.0", f"fc1_pose/pose_conv{i + 1}")
    names |= _head("initial.pose.out.0.0.0", "fc1_pose/pose_conv7") | _head("initial.pose.out.1.head", "fc1_pose/pose_conv8")
    for stage in range(len(model.refine)):
        for task, other in (("pose", "parsing"), ("parsing", "pose")):
            scope, at = f"fc{stage + 2}_{task}", f"refine.{stage}.{task}"
            conv = "conv" if task == "pose" else "parsing_conv"
            names |= _head(f"{at}.remaps.0.0", f"{scope}/{task}_remap") | _head(f"{at}.remaps.1.0", f"{scope}/{other}_remap")
            for i in range(4):
                names |= _head(f"{at}.trunk.{i}.0", f"{scope}/{conv}{i + 1}")
            names |= _head(f"{at}.out.0.0.0", f"{scope}/{conv}5")
            if task == "pose":
                names |= _head(f"{at}.out.1.head", f"{scope}/conv6")
            else:
                names |= _summed(f"{at}.out.1.head", [f"{scope}/parsing_human{i}" for i in range(1, 5)], "w", "b")
    return names


def official_names(model: SPDNet) -> dict[str, str]:
    """PyTorch state-dict key -> official TensorFlow variable name, for every parameter and
    batch-norm statistic of a ``jppnet``-structured model."""
    return backbone_names(model.backbone) | _heads(model)


def jppnet_model_config() -> ModelConfig:
    """The official graph: the jppnet preset (caffe layout, LIP's 20 classes, 16 joints)."""
    return replace(preset("jppnet"), layout="caffe", parsing_space="lip")


def _listed(kind: str, names: list[str]) -> str:
    return f"{len(names)} {kind} variable(s): {', '.join(names[:8])}{' …' if len(names) > 8 else ''}"


def map_variables(variables: dict[str, np.ndarray], names: dict[str, str], state: dict[str, torch.Tensor],
                  source: str, what: str, others_allowed: bool = False) -> dict[str, torch.Tensor]:
    """TensorFlow variables -> tensors for the state-dict keys of ``names`` (key -> variable), conv
    kernels transposed. Raises ConversionError naming every missing or wrongly shaped variable and,
    unless ``others_allowed``, every unknown one."""
    wanted = set(names.values())
    problems = []
    if not others_allowed:
        unknown = sorted(n for n in variables if n not in wanted and n not in IGNORED_NAMES
                         and not n.endswith(IGNORED_SUFFIXES))
        if unknown:
            problems.append(_listed("unknown", unknown))
    missing = sorted(wanted - set(variables))
    if missing:
        problems.append(_listed("missing", missing))
    converted = {}
    for key, name in names.items():
        if name not in variables:
            continue
        value = torch.from_numpy(np.array(variables[name], dtype=np.float32))
        if value.dim() == 4:
            value = value.permute(3, 2, 0, 1)  # [kh, kw, in, out] -> [out, in, kh, kw]
        if tuple(value.shape) != tuple(state[key].shape):
            expected = tuple(state[key].shape)
            if len(expected) == 4:
                expected = (expected[2], expected[3], expected[1], expected[0])
            problems.append(f"variable {name!r} has shape {tuple(variables[name].shape)}, expected {expected}")
            continue
        converted[key] = value
    if problems:
        raise ConversionError(f"{source}: not {what}: " + "; ".join(problems))
    return converted


def convert_variables(variables: dict[str, np.ndarray], source: str = "checkpoint",
                      config: ModelConfig | None = None) -> SPDNet:
    """Official variables -> a model in the official normalisation (BGR, Caffe mean). Raises
    ConversionError naming every unknown, missing or wrongly shaped variable."""
    model = SPDNet(config or jppnet_model_config(), CAFFE_BGR)
    state = model.state_dict()
    converted = map_variables(variables, official_names(model), state, source, "the official JPPNet checkpoint")
    # Keys without a TensorFlow counterpart (batch norm's num_batches_tracked) keep their values.
    model.load_state_dict({**state, **converted})
    return model.eval()


def backbone_state(backbone: Backbone, prefix: Path | str) -> dict[str, torch.Tensor]:
    """A Caffe-layout ResNet's weights from a TensorFlow checkpoint with DeepLab-v2's variable
    names (DeepLab-ResNet-TensorFlow's ImageNet initialisation, or JPPNet's own checkpoint): the
    backbone's state dict. Other variables in the checkpoint (heads) are left alone."""
    state = backbone.state_dict()
    converted = map_variables(read_checkpoint(prefix), backbone_names(backbone, prefix=""), state, str(prefix),
                              f"a Caffe ResNet-{backbone.depth} checkpoint", others_allowed=True)
    return {**state, **converted}


def convert_checkpoint(prefix: Path | str) -> SPDNet:
    """``spd convert jppnet-tf``: the official checkpoint at ``prefix`` as an SPD model."""
    return convert_variables(read_checkpoint(prefix), source=str(prefix))


def official_protocol() -> EvalConfig:
    """JPPNet's test protocol: 384 x 384 (aspect not kept) at scales 0.75, 1, 1.25 with mirror, TF1's
    legacy resizes; parsing averages the stages' logits; pose reads stage 3, nearest-resized,
    integer argmax."""
    return EvalConfig(input_size=(384, 384), scales=(0.75, 1.0, 1.25), flip=True, stages="all", resize="squash",
                      pose_decoder="jppnet", interpolation="tf_legacy")


def write_converted(model: SPDNet, out: Path | str, source: str) -> Path:
    """The converted model as an SPD weights file (safetensors), which ``spd evaluate`` /
    ``spd predict`` / :class:`spd.Predictor` load, with the official test protocol as its defaults."""
    from ..export.formats import metadata, write_safetensors

    out = Path(out)
    meta = metadata(model, official_protocol(), None, "safetensors")
    meta["converted_from"] = source
    write_safetensors(model, out, meta)
    return out
