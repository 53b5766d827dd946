"""The LIP pose CSV: ``<id>.jpg, x0, y0, v0, ..., x15, y15, v15`` per line, no header, ``nan`` for a
missing joint."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..ops.atomic import atomic_path
from .errors import DataError, Problem
from .rules import missing_joints, visibility_problem

NUM_JOINTS = 16


def _strip_extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return stem if dot and ext.lower() in ("jpg", "jpeg", "png") else name


def parse_pose_line(line: str, path: Path, lineno: int) -> tuple[str, np.ndarray]:
    """One CSV row -> (id, float32 [16, 3]); a missing joint (a nan or negative coordinate) is all
    nan; a visibility other than 0, 1 or 2 is an error naming the line."""
    fields = [f.strip() for f in line.split(",")]
    if len(fields) != 1 + 3 * NUM_JOINTS:
        raise DataError(path, f"expected {1 + 3 * NUM_JOINTS} comma-separated fields (name and "
                              f"{NUM_JOINTS} x,y,v triples), found {len(fields)}", lineno)
    if not fields[0]:
        raise DataError(path, "empty image name in the first field", lineno)
    values = np.empty(3 * NUM_JOINTS, dtype=np.float32)
    for i, text in enumerate(fields[1:]):
        try:
            values[i] = float(text)
        except ValueError:
            joint, part = divmod(i, 3)
            raise DataError(path, f"field {i + 2} ({'xyv'[part]} of joint {joint}) is {text!r}, "
                                  "not a number or nan", lineno) from None
        if math.isinf(values[i]):
            raise DataError(path, f"field {i + 2} is infinite", lineno)
    joints = values.reshape(NUM_JOINTS, 3)
    joints[missing_joints(joints)] = np.nan  # nan or a negative coordinate: a missing joint
    problem = visibility_problem(joints)
    if problem:
        raise DataError(path, problem, lineno)
    return _strip_extension(fields[0]), joints


def read_pose_csv(path: Path | str, problems: list[Problem] | None = None) -> dict[str, np.ndarray]:
    """id -> float32 [16, 3]. With ``problems`` given, bad rows are recorded there and skipped;
    otherwise the first bad row raises DataError naming the file and line."""
    path = Path(path)
    table: dict[str, np.ndarray] = {}
    first_line: dict[str, int] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = _decode(raw, path, lineno)
                if not line.strip():
                    continue
                key, joints = parse_pose_line(line, path, lineno)
                if key in table:
                    raise DataError(path, f"id {key!r} appears again (first on line {first_line[key]})", lineno)
            except DataError as err:
                if problems is None:
                    raise
                problems.append(Problem.from_error(err))
                continue
            table[key] = joints
            first_line[key] = lineno
    if not table and not (problems and any(p.path == path for p in problems)):
        empty = DataError(path, "no pose rows (the file is empty); remove it to train without pose")
        if problems is None:
            raise empty
        problems.append(Problem.from_error(empty))
    return table


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                              "save the file as UTF-8", lineno) from None


def format_pose_line(image_name: str, joints: np.ndarray) -> str:
    """Inverse of :func:`parse_pose_line` (missing joints written as ``nan``)."""
    fields = [image_name]
    for x, y, v in np.asarray(joints, dtype=np.float64).reshape(NUM_JOINTS, 3):
        if math.isnan(x) or math.isnan(y):
            fields += ["nan", "nan", "nan"]
        else:
            fields += [f"{x:g}", f"{y:g}", f"{v:g}"]
    return ",".join(fields)


def write_pose_csv(path: Path | str, rows: dict[str, np.ndarray], suffix: str = ".jpg") -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(format_pose_line(k + suffix, v) + "\n" for k, v in rows.items()), encoding="utf-8")
