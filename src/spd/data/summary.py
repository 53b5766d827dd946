"""Dataset statistics: class pixel frequencies, keypoint and DensePose coverage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..labels import label_space
from .reader import ParsingReader


@dataclass
class DatasetStats:
    images: int
    class_pixels: np.ndarray      # int64 [num_classes]
    ignored_pixels: int
    joints_visible: int
    joints_occluded: int
    joints_missing: int
    densepose_foreground: float   # mean fraction of pixels with a body part

    def format(self, space_name: str) -> str:
        space = label_space(space_name)
        total = max(int(self.class_pixels.sum()), 1)
        lines = [f"{self.images} images; class pixel share ({space.name}):"]
        order = np.argsort(-self.class_pixels)
        lines += [f"  {space.classes[c]:<14} {100 * self.class_pixels[c] / total:6.2f}%" for c in order]
        if self.ignored_pixels:
            lines.append(f"  ignored (255)  {self.ignored_pixels} pixels")
        joints = self.joints_visible + self.joints_occluded + self.joints_missing
        if joints:
            lines.append(f"keypoints: {self.joints_visible} visible, {self.joints_occluded} occluded, "
                         f"{self.joints_missing} missing (of {joints})")
        if self.densepose_foreground >= 0:
            lines.append(f"DensePose: {100 * self.densepose_foreground:.1f}% of pixels on a body part")
        return "\n".join(lines)


def dataset_stats(reader: ParsingReader, tick: Callable[[], None] | None = None) -> DatasetStats:
    n = label_space(reader.label_space).num_classes
    pixels = torch.zeros(n, dtype=torch.int64)
    ignored = visible = occluded = missing = 0
    fg, fg_count = 0.0, 0
    for i in range(len(reader)):
        s = reader[i]
        if s.has_parsing:
            p = s.parsing.long()
            pixels += torch.bincount(p[p < n], minlength=n)
            ignored += int((p == 255).sum())
        if s.has_pose:
            v = s.visibility
            missing += int(torch.isnan(v).sum())
            visible += int((v > 0).sum())
            occluded += int((v == 0).sum())
        if s.has_densepose:
            fg += float((s.dp_index > 0).float().mean())
            fg_count += 1
        if tick:
            tick()
    return DatasetStats(len(reader), pixels.numpy(), ignored, visible, occluded, missing,
                        fg / fg_count if fg_count else -1.0)
