"""``model.init_from``: start a model from another SPD model's weights (e.g. ``spd convert
jppnet-tf``'s official JPPNet weights), parameters matched by name.

A parameter of another shape is an error naming it, with one exception that makes "SPD from
JPPNet" work: a refinement stage's first conv reads the concatenation [own output, feeders'
outputs..., feature] (:class:`~spd.model.branches.RefineBranch`). When the model has feeders the
source lacks (SPD's parsing refinement also reads DensePose; JPPNet's does not), the source's
blocks are copied to their places and the new feeders' blocks start at zero, so that the new model
first computes exactly what the source computed, and learns to use the new inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..model import SPDNet
from ..ops.state import WeightsError, check_finite, shape_message
from .files import ModelFile, read_model_file


@dataclass
class InitReport:
    source: str
    loaded: list[str] = field(default_factory=list)     # keys copied as they are
    widened: list[str] = field(default_factory=list)    # fusing convs with zero blocks for new feeders
    fresh: list[str] = field(default_factory=list)      # keys the source has not: they keep their initialisation
    unused: list[str] = field(default_factory=list)     # keys of the source this model has not

    def summary(self) -> str:
        lines = [f"initialised from {self.source}: {len(self.loaded)} tensors loaded"]
        if self.widened:
            lines.append(f"  {len(self.widened)} fusing convs take new feeders' inputs at zero: {', '.join(self.widened)}")
        lines.append(f"  starting fresh ({len(self.fresh)} tensors): {_modules(self.fresh, self.fresh + self.loaded + self.widened)}")
        if self.unused:
            lines.append(f"  not used ({len(self.unused)} tensors of the source): {_modules(self.unused, self.unused)}")
        return "\n".join(lines)


def _branch(key: str) -> str:
    parts = key.split(".")
    return ".".join(parts[:3] if parts[0] == "refine" else parts[:2])


def _modules(keys: list[str], every: list[str]) -> str:
    """``keys`` named by their branch (``initial.densepose``) where the whole branch is among them,
    else by their module (``refine.0.parsing.remaps.2``)."""
    names = set()
    for key in keys:
        branch = _branch(key)
        if all(k in keys for k in every if _branch(k) == branch):
            names.add(branch)
        else:
            parts = key.split(".")[:-1]  # the parameter's module; a layer inside a numbered block names the block
            if len(parts) > 2 and parts[-1].isdigit() and parts[-2].isdigit():
                parts = parts[:-1]
            names.add(".".join(parts))
    return ", ".join(sorted(names)) or "nothing"


def init_from_file(model: SPDNet, path: Path | str | ModelFile) -> InitReport:
    """Copies the weights of the model file ``path`` (or the file already read) into ``model`` by
    name (see the module's doc)."""
    source = path if isinstance(path, ModelFile) else read_model_file(path)
    check_finite(source.state, source.path)
    theirs_config = source.record["config"]
    _check_same_trunk(model, theirs_config, source.path)
    own = model.state_dict()
    report = InitReport(str(source.path))
    new_state = dict(own)
    widen = _widenable(model, theirs_config)
    for key in own:  # the model's order: the first parameter of another shape is named
        if key not in source.state:
            report.fresh.append(key)
            continue
        value = source.state[key]
        if tuple(value.shape) == tuple(own[key].shape):
            new_state[key] = value.to(own[key].dtype)
            report.loaded.append(key)
        elif key in widen:
            new_state[key] = _widened(own[key], value, *widen[key], key, source.path)
            report.widened.append(key)
        else:
            raise WeightsError(f"{source.path}: cannot initialise from it: {shape_message(key, value, own[key])} "
                               "(a model of another design or size; init_from matches parameters by name and shape)")
    report.unused = sorted(set(source.state) - set(own))
    model.load_state_dict(new_state)
    return report


def _check_same_trunk(model: SPDNet, theirs: dict, path: Path) -> None:
    """The two dilated layouts have the same parameter names and shapes but compute different
    functions (where the stride sits, TensorFlow's padding): copying one into the other would load
    every tensor and silently start from a different network."""
    ours = model.config.dilated
    their_layout = (theirs.get("dilated") or {}).get("layout")
    if ours is not None and their_layout is not None and their_layout != ours.layout:
        raise WeightsError(f"{path}: its backbone has model.dilated.layout {their_layout!r}, this model "
                           f"{ours.layout!r}: set model.dilated.layout={their_layout} to start from it")


def _widenable(model: SPDNet, theirs: dict) -> dict[str, tuple[list[str], list[str]]]:
    """Fusing-conv weight keys -> (this model's input blocks, the source's), where they differ."""
    out = {}
    their_feeds = theirs.get("feeds") or {}
    for i, stage in enumerate(model.refine):
        for task, branch in stage.items():
            ours = [task, *model.config.feeders(task), "feature"]
            source = [task, *their_feeds.get(task, ()), "feature"]
            if ours != source and set(source) <= set(ours):
                first = next(n for n, p in branch.trunk.named_parameters() if p.dim() == 4)
                out[f"refine.{i}.{task}.trunk.{first}"] = (ours, source)
    return out


def _widened(own: torch.Tensor, theirs: torch.Tensor, ours: list[str], source: list[str], key: str,
             path: Path) -> torch.Tensor:
    """``own`` (out, in, kh, kw) with the source's input blocks copied to where this model has them
    and the blocks of inputs the source lacks set to zero. Both read ``remap`` channels per
    remapped output and then ``feature`` channels: in = remap * (len(inputs) - 1) + feature."""
    extra = len(ours) - len(source)
    remap = (own.shape[1] - theirs.shape[1]) // extra if extra > 0 else 0
    feature = own.shape[1] - remap * (len(ours) - 1)
    if remap <= 0 or feature <= 0 or theirs.shape[1] != remap * (len(source) - 1) + feature \
            or own.shape[0] != theirs.shape[0] or own.shape[2:] != theirs.shape[2:]:
        raise WeightsError(f"{path}: cannot initialise from it: {shape_message(key, theirs, own)}")
    width = {name: feature if name == "feature" else remap for name in ours}
    offset = {name: sum(width[n] for n in ours[:i]) for i, name in enumerate(ours)}
    out = torch.zeros_like(own)
    start = 0
    for name in source:
        out[:, offset[name]:offset[name] + width[name]] = theirs[:, start:start + width[name]]
        start += width[name]
    return out
