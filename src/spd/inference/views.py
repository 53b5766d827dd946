"""Test-time views of a batch: every scale, optionally mirrored, through the network; each
pass's stages fused (:func:`~spd.model.fuse_stages`), mirrors flipped back with each task's
left/right permutation, and kept per image at the network's resolution (see :mod:`.decode` for
the original size)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..model.outputs import fuse_stages
from ..tasks import get_task, output_owner
from .placement import Placement, place, to_canvas
from .settings import EvalConfig


@dataclass
class Views:
    """One image's fused network outputs. ``maps[name][i]``: output ``name`` as [C, h_i, w_i] at scale
    i (extra dimensions folded into C), summed over the views it is read from (each the mean over
    the chosen stages); ``views[name]``: how many (2 with a mirror, 1 for an output without a
    mirror table, such as U, V). ``mirrored[name][i]``: the mirror view's map, kept apart from
    ``maps`` (which then hold the direct view only) where it must be resized before it is added:
    TF1's legacy resizes, JPPNet's pose evaluation."""

    placements: list[Placement]
    maps: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    mirrored: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    views: dict[str, int] = field(default_factory=dict)


def canvas_size(protocol: EvalConfig, scale: float) -> tuple[int, int]:
    size = (int if protocol.interpolation in ("tf_legacy", "align_corners") else round)  # JPPNet and SCHP truncate
    return max(8, size(protocol.input_size[0] * scale)), max(8, size(protocol.input_size[1] * scale))


def _unflip(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """A mirror view's map [N, C, h, w] flipped back, channels swapped left / right by ``perm`` [C]."""
    return x.flip(-1).index_select(1, perm)


@torch.no_grad()
def run_views(model, images: list[torch.Tensor], protocol: EvalConfig) -> list[Views]:
    """``images``: uint8 RGB [3, H_n, W_n] on the model's device, any sizes. ``model`` has
    ``config``, ``normalise`` and ``predict_stages`` (an :class:`~spd.model.SPDNet`)."""
    if not images:
        return []
    config = model.config
    outputs = [o.name for task in config.tasks for o in get_task(task).outputs]
    # Made once per batch on its device: one host-to-device copy each, not one per image, output and scale.
    perms = {}
    for name in outputs:
        perm = output_owner(name).flip_permutation(name, config) if protocol.flip else None
        perms[name] = None if perm is None else torch.tensor(perm, device=images[0].device)
    out = [Views(placements=[]) for _ in images]
    n = len(images)
    for scale in protocol.scales:
        canvas = canvas_size(protocol, scale)
        placements = [place(im.shape[-2], im.shape[-1], canvas, protocol.resize) for im in images]
        legacy = protocol.interpolation == "tf_legacy"
        x = torch.stack([to_canvas(im, p, model.normalise, legacy) for im, p in zip(images, placements)])
        if protocol.flip:
            # The mirror of the canvas is the canvas of the mirror, except under TF1's resize.
            mirror = (torch.stack([to_canvas(im.flip(-1), p, model.normalise, legacy) for im, p in zip(images, placements)])
                      if legacy else x.flip(-1))
            x = torch.cat([x, mirror])
        fused = fuse_stages(model.predict_stages(x), protocol.stages)
        for name in outputs:
            value = fused.get(name)
            if value is None:
                continue
            mean = value.float().flatten(1, -3)
            perm = perms[name]
            apart = perm is not None and output_owner(name).kept_apart(name, protocol)
            total = mean[:n] + _unflip(mean[n:], perm) if perm is not None and not apart else mean[:n]
            for i, v in enumerate(out):
                v.maps.setdefault(name, []).append(total[i])
                v.views[name] = 2 if perm is not None else 1
                if apart:
                    v.mirrored.setdefault(name, []).append(_unflip(mean[n + i:n + i + 1], perm)[0])
        for i, v in enumerate(out):
            v.placements.append(placements[i])
    return out
