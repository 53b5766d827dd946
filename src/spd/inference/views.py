"""Test-time views of a batch: every scale, optionally mirrored, through the network; each
pass's stages fused (:func:`~spd.model.fuse_stages`), mirrors flipped back with the label spaces' left/right
swaps, and kept per image at the network's resolution (see :mod:`.decode` for the original size)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..labels import keypoint_space, label_space
from ..model.outputs import fuse_stages
from .placement import Placement, place, to_canvas
from .settings import EvalConfig

MAP_TASKS = ("parsing", "pose", "dp_index")


@dataclass
class Views:
    """One image's fused network outputs. ``maps[task][i]``: [C, h_i, w_i] at scale i, summed over
    the mirrors (each the mean over the chosen stages); ``uv[i]``: [2 * 24, h_i, w_i] from the
    un-mirrored view only (U, V have no mirror table). ``views``: terms in each scale's sum.
    ``mirrored[task][i]``: the mirror view's map, kept apart from ``maps`` (which then hold the
    direct view only) where it must be resized before it is added: JPPNet's pose evaluation."""

    placements: list[Placement]
    views: int
    maps: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    mirrored: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    uv: list[torch.Tensor] = field(default_factory=list)


def canvas_size(tta: EvalConfig, scale: float) -> tuple[int, int]:
    size = (int if tta.interpolation == "tf_legacy" else round)  # JPPNet truncates
    return max(8, size(tta.input_size[0] * scale)), max(8, size(tta.input_size[1] * scale))


def kept_apart(task: str, tta: EvalConfig) -> bool:
    """Whether the mirror view's map of ``task`` must be resized before it is added: TF1's legacy
    resizes are not mirror-symmetric, and JPPNet flips the mirror's output back at full size."""
    return tta.flip and (tta.interpolation == "tf_legacy" or (task == "pose" and tta.pose_decoder == "jppnet"))


def _unflip(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """A mirror view's map [N, C, h, w] flipped back, channels swapped left / right by ``perm`` [C]."""
    return x.flip(-1).index_select(1, perm)


@torch.no_grad()
def run_views(model, images: list[torch.Tensor], tta: EvalConfig) -> list[Views]:
    """``images``: uint8 RGB [3, H_n, W_n] on the model's device, any sizes. ``model`` has
    ``config``, ``normalise`` and ``predict_stages`` (an :class:`~spd.model.SPDNet`)."""
    config = model.config
    # Made once per batch on its device: one host-to-device copy each, not one per image, task and scale.
    perms = {task: torch.tensor(perm, device=images[0].device) if images else None for task, perm in (
        ("parsing", label_space(config.parsing_space).flip_permutation), ("pose", keypoint_space().flip_permutation),
        ("dp_index", label_space("densepose").flip_permutation))}
    out = [Views(placements=[], views=2 if tta.flip else 1) for _ in images]
    n = len(images)
    for scale in tta.scales:
        canvas = canvas_size(tta, scale)
        placements = [place(im.shape[-2], im.shape[-1], canvas, tta.resize) for im in images]
        legacy = tta.interpolation == "tf_legacy"
        x = torch.stack([to_canvas(im, p, model.normalise, legacy) for im, p in zip(images, placements)])
        if tta.flip:
            # The mirror of the canvas is the canvas of the mirror, except under TF1's resize.
            mirror = (torch.stack([to_canvas(im.flip(-1), p, model.normalise, legacy) for im, p in zip(images, placements)])
                      if legacy else x.flip(-1))
            x = torch.cat([x, mirror])
        fused = fuse_stages(model.predict_stages(x), tta.stages)
        for task in MAP_TASKS:
            if getattr(fused, task) is None:
                continue
            mean = getattr(fused, task).float()
            apart = kept_apart(task, tta)
            total = mean[:n] + _unflip(mean[n:], perms[task]) if tta.flip and not apart else mean[:n]
            for i, v in enumerate(out):
                v.maps.setdefault(task, []).append(total[i])
                if apart:
                    v.mirrored.setdefault(task, []).append(_unflip(mean[n + i:n + i + 1], perms[task])[0])
        uv = fused.dp_uv
        for i, v in enumerate(out):
            v.placements.append(placements[i])
            if uv is not None:
                v.uv.append(uv[i].float().flatten(0, 1))
    return out
