"""Relabelling a model's parsing output into another label set (ATR ids, a try-on pipeline's
own classes), declared as data: ``relabel/*.yaml`` ships ``atr`` and ``lip``; users write their
own file of the same shape (``name``, ``source``, ``classes``, ``map``, optional ``palette``)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from ..ops.errors import InputError
from .spaces import IGNORE_INDEX, PARSING_SPACES, label_space

BUILT_IN = ("atr", "lip")


@dataclass(frozen=True)
class Relabel:
    name: str
    source: str                  # label space the input ids belong to
    classes: tuple[str, ...]     # target class names; position = target id
    lut: np.ndarray              # uint8[256]: source id -> target id (255 stays 255)
    palette: np.ndarray | None   # uint8[len(classes), 3] or None

    def apply(self, labels: np.ndarray) -> np.ndarray:
        return self.lut[np.asarray(labels, dtype=np.uint8)]


def load_relabel(name_or_path: str | Path) -> Relabel:
    """A built-in name (``atr``, ``lip``) or a YAML file. Errors name the file and the key at fault."""
    text_path = Path(name_or_path)
    if str(name_or_path) in BUILT_IN:
        where = f"built-in label set {name_or_path!r}"
        text = resources.files(__package__).joinpath("relabel", f"{name_or_path}.yaml").read_text(encoding="utf-8")
    elif text_path.is_file():
        where = str(text_path)
        try:
            text = text_path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"{where}: not a YAML text file ({err})") from None
    else:
        raise FileNotFoundError(f"--labels {name_or_path}: neither a built-in label set ({', '.join(BUILT_IN)}) "
                                "nor a YAML file")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"{where}: not valid YAML ({err})") from err
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a mapping with keys name, source, classes, map")
    unknown = sorted(set(doc) - {"name", "source", "classes", "map", "palette"})
    missing = sorted({"source", "classes", "map"} - set(doc))
    if unknown or missing:
        raise InputError(f"{where}: " + (f"unknown key {unknown[0]!r}" if unknown else f"missing key {missing[0]!r}")
                         + " (keys: name, source, classes, map, palette)")
    try:
        source = label_space(str(doc["source"]))
    except KeyError as err:
        raise InputError(f"{where}: source: {err.args[0]}") from None
    classes = tuple(str(c) for c in doc["classes"] or ())
    if not classes or len(classes) > IGNORE_INDEX or len(set(classes)) != len(classes):
        raise InputError(f"{where}: classes must be 1 to {IGNORE_INDEX} distinct names")
    mapping = doc["map"] or {}
    if not isinstance(mapping, dict):
        raise InputError(f"{where}: map must be a mapping 'source class: target class'")
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for key, target in mapping.items():
        if key not in source.classes:
            raise InputError(f"{where}: map: {key!r} is not a class of {source.name} ({', '.join(source.classes)})")
        if str(target) not in classes:
            raise InputError(f"{where}: map[{key!r}]: {target!r} is not one of the classes")
        lut[source.classes.index(key)] = classes.index(str(target))
    unmapped = [c for c in source.classes if c not in mapping]
    if unmapped:
        raise InputError(f"{where}: map: no target for {source.name} class {unmapped[0]!r} (every class needs one)")
    palette = None
    if doc.get("palette") is not None:
        try:
            palette = np.asarray(doc["palette"], dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{where}: palette must list one [r, g, b] (0..255) per class") from None
        if palette.shape != (len(classes), 3) or palette.min() < 0 or palette.max() > 255:
            raise InputError(f"{where}: palette must list one [r, g, b] (0..255) per class, got shape {palette.shape}")
        palette = palette.astype(np.uint8)
    elif str(doc.get("name")) in PARSING_SPACES and tuple(label_space(doc["name"]).classes) == classes:
        palette = label_space(doc["name"]).palette_array()[: len(classes)]
    return Relabel(str(doc.get("name", text_path.stem)), source.name, classes, lut, palette)
