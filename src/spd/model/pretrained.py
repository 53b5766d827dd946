"""Pretrained weights for a trunk's encoder, for every family: torchvision's ImageNet weights (from
the torch cache, or downloaded when the user is online), a local state-dict file, or a TensorFlow
checkpoint of a Caffe / DeepLab-v2 ResNet (the prefix of ``PREFIX.index``). What fits is read from
the trunk's declaration (``weights_layout``, ``depth``); every file is checked against the
encoder's keys and shapes before anything is loaded."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.hub import get_dir

from ..ops.state import WeightsError, check_state_dict, read_torch_file, unwrap_state_dict
from ..ops.tf_checkpoint import map_variables, read_checkpoint
from .caffe_names import caffe_resnet_names
from .resnets import RESNETS
from .trunk import Trunk

# Prefixes that other code bases put before a ResNet's own keys.
WRAPPERS = ("backbone.", "encoder.", "trunk.encoder.")


def imagenet_cache_path(depth: int) -> Path:
    """Where torchvision keeps the ImageNet file for this depth (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(get_dir()) / "checkpoints" / os.path.basename(RESNETS[depth].imagenet.url)


def imagenet_offline_recipe(depth: int) -> str:
    """What a machine without internet access needs: the file, where it goes, or the config line
    that names it wherever it is (docs/training.md gives the same recipe)."""
    url, name = RESNETS[depth].imagenet.url, os.path.basename(RESNETS[depth].imagenet.url)
    return (f"On a machine with network access download {url}, then either copy it to {imagenet_cache_path(depth)} "
            f"(the torch cache, $TORCH_HOME/hub/checkpoints) or set `model.backbone_weights: /path/to/{name}` in the "
            f"config (or --set model.backbone_weights=/path/to/{name})")


def load_encoder_weights(trunk: Trunk, source: str | Path, allow_download: bool = True) -> str:
    """Loads ``source`` (``"imagenet"``, a state-dict file or a TensorFlow checkpoint prefix) into
    ``trunk.encoder``. Returns where the weights came from."""
    if str(source) == "imagenet":
        path = _imagenet_file(trunk, allow_download)
    elif Path(f"{source}.index").is_file():
        return _load_tf_checkpoint(trunk, Path(source))
    else:
        path = Path(source)
        if not path.is_file():
            raise WeightsError(f"{path}: backbone weights file not found (nor a TensorFlow checkpoint {path}.index)")
    state = unwrap_state_dict(read_torch_file(path, "state-dict file"), path)
    for wrapper in WRAPPERS:
        if state and all(k.startswith(wrapper) for k in state):
            state = {k.removeprefix(wrapper): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}  # the ImageNet classifier
    check_state_dict(trunk.encoder.state_dict(), state, path, f"a ResNet-{trunk.depth} encoder")
    trunk.encoder.load_state_dict(state)
    return str(path)


def _imagenet_file(trunk: Trunk, allow_download: bool) -> Path:
    if trunk.weights_layout != "torchvision":
        raise WeightsError(f"torchvision's ImageNet weights fit the torchvision layout (stride in the 3x3 convs); "
                           f"this encoder has the {trunk.weights_layout} layout. Set model.dilated.layout: "
                           "torchvision, or pass a state dict trained in the caffe layout")
    path = imagenet_cache_path(trunk.depth)
    if not path.is_file():
        if not allow_download:
            raise WeightsError(f"ImageNet weights for ResNet-{trunk.depth} are not in the torch cache. "
                               + imagenet_offline_recipe(trunk.depth))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(RESNETS[trunk.depth].imagenet.url, str(path), progress=True)
        except Exception as err:  # URLError, HTTPError, OSError: all mean "not here"
            raise WeightsError(f"could not download the ImageNet weights for ResNet-{trunk.depth} ({err}). "
                               + imagenet_offline_recipe(trunk.depth)) from err
    return path


def _load_tf_checkpoint(trunk: Trunk, prefix: Path) -> str:
    if trunk.weights_layout != "caffe":
        raise WeightsError(f"{prefix}: a TensorFlow (DeepLab / Caffe) ResNet fits the caffe layout; this encoder "
                           f"has the {trunk.weights_layout} layout. Set model.dilated.layout: caffe")
    trunk.encoder.load_state_dict(caffe_resnet_state(trunk, prefix))
    return f"{prefix} (TensorFlow checkpoint)"


def caffe_resnet_state(trunk: Trunk, prefix: Path | str) -> dict[str, torch.Tensor]:
    """A Caffe-layout encoder's weights from a TensorFlow checkpoint with DeepLab-v2's variable names
    (DeepLab-ResNet-TensorFlow's ImageNet initialisation, or JPPNet's own checkpoint). Other
    variables in the checkpoint (heads) are left alone."""
    state = trunk.encoder.state_dict()
    converted = map_variables(read_checkpoint(prefix), caffe_resnet_names(trunk.encoder, trunk.depth), state,
                              str(prefix), f"a Caffe ResNet-{trunk.depth} checkpoint", others_allowed=True)
    return {**state, **converted}
