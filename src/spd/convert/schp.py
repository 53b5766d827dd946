"""SCHP's published checkpoints (Self-Correction for Human Parsing: LIP, ATR, Pascal-Person-Part)
-> the ``schp_<dataset>`` preset.

A checkpoint is a ``torch.save`` dict whose ``state_dict`` maps SCHP's module names, prefixed
``module.`` (DataParallel), to tensors. It is read with ``weights_only`` (tensors and plain data:
no code in the file runs), in the zip format or the pre-1.6 one. SCHP's module names live on in
this package's schp family, so converting is the table :data:`PREFIXES`. The classes of the head
tell the dataset; ``--dataset`` checks it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..export.formats import metadata
from ..inference import EvalConfig
from ..labels import label_space
from ..model import InputNormalisation, SPDNet, preset
from ..ops.state import WeightsError, check_finite, read_torch_file, shape_message
from ..weights import write_weights_file

# SCHP's module -> where this package keeps it.
PREFIXES = {"conv1.": "trunk.encoder.conv1.", "bn1.": "trunk.encoder.bn1.", "conv2.": "trunk.encoder.conv2.",
            "bn2.": "trunk.encoder.bn2.", "conv3.": "trunk.encoder.conv3.", "bn3.": "trunk.encoder.bn3.",
            **{f"layer{i}.": f"trunk.encoder.layer{i}." for i in range(1, 5)},
            "context_encoding.": "trunk.context.", "edge.": "trunk.edge.",
            "decoder.": "initial.parsing.", "fushion.": "refine.0.parsing.fushion."}
# SCHP's input: BGR in [0, 1], its ImageNet statistics (listed in BGR order).
SCHP_NORMALISATION = InputNormalisation("BGR", 1.0 / 255.0, (0.406, 0.456, 0.485), (0.225, 0.224, 0.229))
# Its test crop per dataset (simple_extractor.py's dataset_settings).
INPUT_SIZES = {"lip": (473, 473), "atr": (512, 512), "pascal": (512, 512)}
DATASETS = tuple(INPUT_SIZES)
HEAD = "decoder.conv4.weight"


def spd_key(key: str) -> str | None:
    """SCHP's state-dict key (without ``module.``) -> this package's, None for a key it lacks."""
    for theirs, ours in PREFIXES.items():
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return None


def schp_protocol(dataset: str) -> EvalConfig:
    """SCHP's ``simple_extractor.py``: the affine crop to 473 (LIP) or 512 (ATR, Pascal), the
    fusion head's logits (``stages: final``), upsampled and warped back, argmax; no mirror."""
    return EvalConfig(input_size=INPUT_SIZES[dataset], scales=(1.0,), flip=False, stages="final", resize="affine",
                      interpolation="align_corners")


def read_schp_state(path: Path | str) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict, keys without ``module.``; WeightsError for anything else."""
    obj = read_torch_file(path, "SCHP checkpoint")
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        kind = f"a dict with keys {sorted(map(str, obj))[:6]}" if isinstance(obj, dict) else type(obj).__name__
        raise WeightsError(f"{path}: not an SCHP checkpoint: expected a dict with 'state_dict' (names -> tensors), "
                           f"found {kind}")
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def dataset_of(state: dict[str, torch.Tensor], path: Path | str, dataset: str | None) -> str:
    if HEAD not in state:
        raise WeightsError(f"{path}: not an SCHP checkpoint: no {HEAD!r} (SCHP's parsing head; the file has "
                           f"{len(state)} tensors, the first {sorted(state)[:3]})")
    if state[HEAD].dim() != 4:
        raise WeightsError(f"{path}: not an SCHP checkpoint: {HEAD!r} has shape {tuple(state[HEAD].shape)}, "
                           "expected [classes, 256, 1, 1]")
    classes = int(state[HEAD].shape[0])
    fits = [d for d in DATASETS if label_space(d).num_classes == classes]
    if dataset is None:
        if not fits:
            raise WeightsError(f"{path}: its parsing head has {classes} classes; SCHP's LIP, ATR and Pascal models "
                               "have 20, 18 and 7")
        return fits[0]
    if dataset not in DATASETS:
        raise WeightsError(f"--dataset {dataset!r}: one of {', '.join(DATASETS)}")
    if dataset not in fits:
        raise WeightsError(f"{path}: its parsing head has {classes} classes, not the {label_space(dataset).num_classes} "
                           f"of --dataset {dataset}" + (f" (it fits --dataset {fits[0]})" if fits else ""))
    return dataset


def convert_state(state: dict[str, torch.Tensor], path: Path | str, dataset: str | None = None) -> SPDNet:
    """SCHP's state dict -> a ``schp_<dataset>`` model in SCHP's input normalisation. Raises
    WeightsError naming the missing, unknown and wrongly shaped keys (SCHP's names)."""
    dataset = dataset_of(state, path, dataset)
    model = SPDNet(preset(f"schp_{dataset}"), SCHP_NORMALISATION)
    own = model.state_dict()
    ours_to_theirs = {spd_key(k): k for k in state}
    unknown = sorted(k for k, ours in zip(state, map(spd_key, state)) if ours not in own)
    missing = sorted(k for k in own if k not in ours_to_theirs)
    wrong = sorted(ours_to_theirs[k] for k in own.keys() & ours_to_theirs.keys()
                   if tuple(state[ours_to_theirs[k]].shape) != tuple(own[k].shape))
    if unknown or missing or wrong:
        problems = []
        if missing:
            names = sorted(_theirs(k) for k in missing)
            problems.append(f"{len(missing)} missing ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})")
        if unknown:
            problems.append(f"{len(unknown)} unknown ({', '.join(unknown[:4])}{', ...' if len(unknown) > 4 else ''})")
        if wrong:
            problems.append(shape_message(wrong[0], state[wrong[0]], own[spd_key(wrong[0])]))
        raise WeightsError(f"{path}: not SCHP's ResNet-101 {dataset} network: " + "; ".join(problems))
    converted = {ours: state[theirs].float() for ours, theirs in ours_to_theirs.items()}
    check_finite(converted, path)
    model.load_state_dict(converted)
    return model.eval()


def _theirs(ours: str) -> str:
    for theirs, prefix in PREFIXES.items():
        if ours.startswith(prefix):
            return theirs + ours[len(prefix):]
    return ours


def convert_checkpoint(path: Path | str, dataset: str | None = None) -> SPDNet:
    """``spd convert schp``: SCHP's checkpoint at ``path`` as an SPD model."""
    return convert_state(read_schp_state(path), path, dataset)


def write_converted(model: SPDNet, out: Path | str, source: str) -> Path:
    """The converted model as an SPD weights file, with SCHP's test protocol as its defaults."""
    meta = metadata(model, schp_protocol(model.config.parsing_space), None, "safetensors")
    meta["converted_from"] = source
    return write_weights_file(model, out, meta)
