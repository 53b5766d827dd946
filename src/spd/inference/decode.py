"""Fused network outputs -> predictions at the original image size, band by band.

Every output is the mean of its views' maps resized to the original size (bilinearly, or with
TF1's legacy resizes under ``interpolation: tf_legacy``, mirrors apart), then decoded by its task
(:meth:`spd.tasks.Task.decode`). Parsing and part index: argmax (the evaluation protocol). Pose:
its argmax per joint, refined to sub-pixel by a parabola through the neighbours (``subpixel``) or
not (``argmax``); ``jppnet`` resizes the heatmaps as JPPNet's evaluation does (TF1's nearest
neighbour, the mirror view resized before it is flipped back) and takes the integer argmax. U, V:
read at the predicted part.
"""

from __future__ import annotations

from dataclasses import asdict, fields

from ..tasks import get_task, output_owner
from .resized import ResizedSum
from .result import Prediction
from .settings import EvalConfig
from .views import Views

_FIELDS = {f.name for f in fields(Prediction)}
_TENSOR_FIELDS = set(Prediction.TENSORS)


def _fused(v: Views, name: str, protocol: EvalConfig) -> ResizedSum:
    """The views' maps of output ``name`` at the original size, their mean over views and scales;
    mirror views kept apart (see :meth:`~spd.tasks.Task.kept_apart`) are resized as mirrors."""
    kernel = output_owner(name).kernel(name, protocol)
    n = len(v.placements)
    factor = 1.0 / (v.views[name] * n)
    if name not in v.mirrored:
        return ResizedSum(v.maps[name], v.placements, factor, kernel)
    return ResizedSum(v.maps[name] + v.mirrored[name], v.placements * 2, factor, kernel, [False] * n + [True] * n)


def decode_views(v: Views, protocol: EvalConfig, classes: tuple[str, ...], joints: tuple[str, ...],
                 return_probs: bool = False, tasks: tuple[str, ...] | None = None) -> Prediction:
    """One image's views -> its Prediction: each task (``tasks``: those with outputs in the views
    when None) decodes its outputs, resized lazily to the original size."""
    out = Prediction(classes=classes, joints=joints, protocol=asdict(protocol))
    fused = {name: _fused(v, name, protocol) for name in v.maps}
    names = tasks if tasks is not None else tuple(dict.fromkeys(output_owner(name).name for name in v.maps))
    for name in names:
        task = get_task(name)
        values = task.decode({o.name: fused[o.name] for o in task.outputs}, protocol, return_probs)
        for key, value in values.items():
            if key in _TENSOR_FIELDS:
                setattr(out, key, value)
            elif key in _FIELDS:
                raise ValueError(f"task {name!r} decodes a value named {key!r}, a field of Prediction that is not an output")
            else:
                out.extra[key] = value
    return out
