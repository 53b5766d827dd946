"""How uint8 RGB images become the network's input; recorded in every model file."""

from __future__ import annotations

from dataclasses import dataclass

from ..ops.errors import InputError

# torchvision's ImageNet statistics (RGB, inputs scaled to [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputNormalisation:
    """``(pixel * scale - mean) / std`` per channel, channels in ``channel_order`` (mean and std
    listed in that order). The default suits torchvision's ImageNet weights; :data:`CAFFE_BGR` is
    the official JPPNet weights' input."""

    channel_order: str = "RGB"
    scale: float = 1.0 / 255.0   # uint8 -> [0, 1] before mean / std
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise InputError(f"normalisation channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")


# JPPNet / DeepLab-v2 (Caffe): BGR 0..255 less the Caffe ImageNet mean, no division.
CAFFE_BGR = InputNormalisation("BGR", 1.0, (104.00698793, 116.66876762, 122.67891434), (1.0, 1.0, 1.0))
