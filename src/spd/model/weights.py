"""Backbone weights: torchvision's ImageNet weights (from the torch cache, or downloaded when the
user is online), a local state-dict file, or a TensorFlow checkpoint of a Caffe / DeepLab-v2 ResNet
(the prefix of ``PREFIX.index``), verified against the backbone's keys and shapes."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.hub import get_dir
from torchvision.models import resnet

from .backbone import Backbone

IMAGENET = {18: resnet.ResNet18_Weights.IMAGENET1K_V1, 34: resnet.ResNet34_Weights.IMAGENET1K_V1,
            50: resnet.ResNet50_Weights.IMAGENET1K_V1, 101: resnet.ResNet101_Weights.IMAGENET1K_V1}


class WeightsError(RuntimeError):
    pass


def imagenet_cache_path(depth: int) -> Path:
    """Where torchvision keeps the ImageNet file for this depth (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(get_dir()) / "checkpoints" / os.path.basename(IMAGENET[depth].url)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a foreign or broken file
        raise WeightsError(f"{path}: cannot read as a PyTorch state dict ({type(err).__name__}: {err})") from err
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}


def load_backbone_weights(backbone: Backbone, source: str | Path, allow_download: bool = True) -> str:
    """``source`` is ``"imagenet"`` or a path to a state dict. Returns where the weights came from.

    ImageNet weights are read from the torch cache; if they are not there they are downloaded
    when ``allow_download`` (and the network) allows, else a WeightsError says where to put them.
    """
    if str(source) == "imagenet":
        if backbone.layout != "torchvision":
            raise WeightsError(f"torchvision's ImageNet weights fit the torchvision layout (stride in the 3x3 convs); "
                               f"this backbone has the {backbone.layout} layout. Set model.layout: torchvision, or "
                               "pass a state dict trained in the caffe layout")
        path = imagenet_cache_path(backbone.depth)
        if not path.is_file():
            url = IMAGENET[backbone.depth].url
            if not allow_download:
                raise WeightsError(f"ImageNet weights for ResNet-{backbone.depth} are not in the torch cache. "
                                   f"Download {url} to {path} (or pass the file's path instead of 'imagenet').")
            try:
                torch.hub.download_url_to_file(url, str(path), progress=True)
            except Exception as err:  # URLError, HTTPError, OSError: all mean "not here"
                raise WeightsError(f"could not download the ImageNet weights ({err}). Download {url} on a "
                                   f"machine with network access and copy it to {path}, or pass its path.") from err
    elif Path(f"{source}.index").is_file():
        return _load_tf_checkpoint(backbone, Path(source))
    else:
        path = Path(source)
        if not path.is_file():
            raise WeightsError(f"{path}: backbone weights file not found (nor a TensorFlow checkpoint {path}.index)")
    state = {k: v for k, v in _read_state_dict(path).items() if not k.startswith("fc.")}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(f"{name}: {', '.join(keys[:4])}{' …' if len(keys) > 4 else ''}"
                           for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys)
        raise WeightsError(f"{path}: does not fit a ResNet-{backbone.depth} backbone ({detail})")
    backbone.load_state_dict(state)
    return str(path)


def _load_tf_checkpoint(backbone: Backbone, prefix: Path) -> str:
    from ..convert.jppnet_tf import ConversionError, backbone_state
    from ..convert.tf_checkpoint import CheckpointFormatError

    if backbone.layout != "caffe":
        raise WeightsError(f"{prefix}: a TensorFlow (DeepLab / Caffe) ResNet fits the caffe layout; this backbone "
                           f"has the {backbone.layout} layout. Set model.layout: caffe")
    try:
        backbone.load_state_dict(backbone_state(backbone, prefix))
    except (ConversionError, CheckpointFormatError) as err:
        raise WeightsError(str(err)) from err
    return f"{prefix} (TensorFlow checkpoint)"
