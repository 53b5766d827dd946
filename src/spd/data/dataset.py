"""A torch Dataset over a reader: loads a sample, applies the joint transform and builds the
training targets, with per-sample flags saying which targets exist."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torchvision import tv_tensors

from ..labels import IGNORE_INDEX
from .errors import DataError
from ..ops.tf import legacy_nearest_resize
from .heatmaps import HeatmapCodec, jppnet_heatmaps
from .reader import ParsingReader
from .sample import Sample
from .transforms import HeatmapStack, ParsingMask, PartIndexMask, UVMap

log = logging.getLogger(__name__)
NUM_JOINTS = 16


def to_tv_tensors(sample: Sample, num_joints: int = NUM_JOINTS, dense_heatmaps: bool = False) -> dict[str, Any]:
    """Wraps a sample's targets as tv_tensors; a missing target becomes an ignore-filled one, so
    that every sample has the same keys and the flags tell what is real. ``dense_heatmaps``: also
    JPPNet's heatmaps at the original size (to be transformed with the image)."""
    image = tv_tensors.Image(sample.image)
    hw = tuple(sample.image.shape[-2:])
    parsing = sample.parsing if sample.has_parsing else torch.full(hw, IGNORE_INDEX, dtype=torch.uint8)
    keypoints = sample.keypoints if sample.has_pose else torch.full((num_joints, 2), float("nan"))
    dp_index = sample.dp_index if sample.has_densepose else torch.full(hw, IGNORE_INDEX, dtype=torch.uint8)
    valid = torch.full((1, *hw), 1.0 if sample.has_densepose else 0.0)
    dp_uv = torch.cat([sample.dp_uv if sample.has_densepose else torch.zeros((2, *hw)), valid])
    data = {
        "image": image,
        "parsing": ParsingMask(parsing),
        "keypoints": tv_tensors.KeyPoints(keypoints, canvas_size=hw),
        "dp_index": PartIndexMask(dp_index),
        "dp_uv": UVMap(dp_uv),
    }
    if dense_heatmaps:
        data["heatmaps"] = HeatmapStack(jppnet_heatmaps(keypoints, *hw))
    return data


def build_targets(data: dict[str, Any], flags: dict[str, bool], codec: HeatmapCodec) -> dict[str, Any]:
    """Plain tensors for the model and the losses.

    image [3, H, W] uint8; parsing [H, W] uint8 (255 ignore; a quarter of int64's bytes to the device); heatmaps [K, h, w] float32;
    joint_weight [K] (1 = joint present in the crop); keypoints [K, 2] (nan missing);
    (with JPPNet's dense heatmaps in ``data``: those, nearest-resized to the output grid, and
    weight 1 for every joint of an annotated image: a missing joint's all-zero map is a target);
    dp_index [H, W] uint8 (255 ignore); dp_uv [2, H, W] float32 (0 where invalid);
    dp_uv_valid [H, W] bool (U, V may be trained on: not mirrored, not padding);
    has_parsing, has_pose, has_densepose, has_dp_uv: bool scalars.
    """
    image = data["image"].as_subclass(torch.Tensor)
    hw = tuple(image.shape[-2:])
    keypoints = data["keypoints"].as_subclass(torch.Tensor).float()
    if "heatmaps" in data:
        dense = data["heatmaps"].as_subclass(torch.Tensor).float()[None] / 255.0
        heatmaps = legacy_nearest_resize(dense, codec.grid_hw(hw))[0]
        weight = torch.ones(heatmaps.shape[0])
    else:
        heatmaps, weight = codec.encode(keypoints, hw)
    uv = data["dp_uv"].as_subclass(torch.Tensor).float()
    # Bilinear resampling blends validity at its edges: only fully valid pixels count.
    uv_valid = (uv[2] > 0.999) & flags["has_densepose"]
    return {
        "image": image,
        "parsing": data["parsing"].as_subclass(torch.Tensor).to(torch.uint8),
        "heatmaps": heatmaps,
        "joint_weight": weight if flags["has_pose"] else torch.zeros_like(weight),
        "keypoints": keypoints,
        "dp_index": data["dp_index"].as_subclass(torch.Tensor).to(torch.uint8),
        "dp_uv": uv[:2] * uv_valid,
        "dp_uv_valid": uv_valid,
        "has_parsing": torch.tensor(flags["has_parsing"]),
        "has_pose": torch.tensor(flags["has_pose"]),
        "has_densepose": torch.tensor(flags["has_densepose"]),
        "has_dp_uv": uv_valid.any(),
    }


class ParsingDataset(torch.utils.data.Dataset):
    """``dataset[i]`` -> dict of targets (see :func:`build_targets`) plus ``id``.

    With ``skip_corrupt`` a sample that fails to load is replaced by the next one and a warning
    names the file; without it the DataError propagates.
    """

    def __init__(self, reader: ParsingReader, transform: Callable | None = None,
                 codec: HeatmapCodec | None = None, skip_corrupt: bool = False, seed: int = 0,
                 dense_heatmaps: bool = False):
        self.reader = reader
        self.dense_heatmaps = dense_heatmaps
        self.seed = seed
        self.transform = transform
        self.codec = codec or HeatmapCodec()
        self.skip_corrupt = skip_corrupt

    def __len__(self) -> int:
        return len(self.reader)

    def load(self, index: int) -> Sample:
        if not self.skip_corrupt:
            return self.reader[index]
        for attempt in range(min(len(self.reader), 16)):
            try:
                return self.reader[(index + attempt) % len(self.reader)]
            except DataError as err:
                log.warning("skipping unreadable sample: %s", err)
        raise DataError(self.reader.root, f"16 consecutive samples from index {index} could not be read")

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """``key`` is an index, or (epoch, index) from :class:`EpochSampler`: then the sample's
        random augmentation is seeded by (seed, epoch, index), so that it does not depend on
        worker processes or on whether the run was resumed."""
        if isinstance(key, tuple):
            epoch, index = key
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(hash((self.seed, epoch, index)) % (2**63))
                return self._item(index)
        return self._item(key)

    def _item(self, index: int) -> dict[str, Any]:
        sample = self.load(index)
        flags = {"has_parsing": sample.has_parsing, "has_pose": sample.has_pose, "has_densepose": sample.has_densepose}
        data = to_tv_tensors(sample, dense_heatmaps=self.dense_heatmaps and sample.has_pose)
        if self.transform is not None:
            data = self.transform(data)
        targets = build_targets(data, flags, self.codec)
        targets["id"] = sample.id
        return targets
