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

from pathlib import Path

import numpy as np

from ..export.formats import metadata
from ..inference import EvalConfig
from ..model import CAFFE_BGR, SPDNet, preset
from ..model.caffe_names import caffe_resnet_names, conv_names
from ..model.config import ModelConfig
from ..ops.tf_checkpoint import map_variables, read_checkpoint
from ..weights import write_weights_file


def _head(prefix: str, scope: str) -> dict[str, str]:
    """A head conv of the official ``conv2d`` helper: variables ``w`` and ``b``."""
    return conv_names(prefix, scope, "w", "b")


def _summed(prefix: str, scopes: list[str], kernel: str, bias: str) -> dict[str, str]:
    """The summed dilated convs of a parsing output (:class:`~spd.model.layers.DilatedSum`)."""
    return {k: v for i, scope in enumerate(scopes) for k, v in conv_names(f"{prefix}.branches.{i}", scope, kernel, bias).items()}


def _heads(model: SPDNet) -> dict[str, str]:
    names = _summed("initial.parsing.out.head", [f"fc1_human_c{i}" for i in range(4)], "weights", "biases")
    for i, s in enumerate("ab"):
        names |= conv_names(f"initial.parsing.feature.{i}.0", f"res5d_branch2{s}_parsing")
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
    return caffe_resnet_names(model.trunk.encoder, model.trunk.depth, prefix="trunk.encoder.") | _heads(model)


def jppnet_model_config() -> ModelConfig:
    """The official graph: the jppnet preset (caffe layout, LIP's 20 classes, 16 joints)."""
    return preset("jppnet")


def convert_variables(variables: dict[str, np.ndarray], source: str = "checkpoint",
                      config: ModelConfig | None = None) -> SPDNet:
    """Official variables -> a model in the official normalisation (BGR, Caffe mean). Raises
    WeightsError naming every unknown, missing or wrongly shaped variable."""
    model = SPDNet(config or jppnet_model_config(), CAFFE_BGR)
    state = model.state_dict()
    converted = map_variables(variables, official_names(model), state, source, "the official JPPNet checkpoint")
    # Keys without a TensorFlow counterpart (batch norm's num_batches_tracked) keep their values.
    model.load_state_dict({**state, **converted})
    return model.eval()


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
    meta = metadata(model, official_protocol(), None, "safetensors")
    meta["converted_from"] = source
    return write_weights_file(model, out, meta)
