"""Writes the synthetic dataset to disk in the real formats, so that the real readers are the ones
exercised: LIP official archive layout (with pose CSVs) or ATR layout (with split files), plus a
folder of full-image IUV PNGs, and a manifest written last (its absence marks an interrupted run)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import functools
import logging
import multiprocessing
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from ... import __version__
from ...ops.atomic import write_text
from ...ops.errors import InputError
from ...ops.locks import file_lock
from ...labels import label_space
from ..atr import write_split
from ..errors import DataError
from ..image_io import write_iuv, write_image, write_label
from ..pose_csv import write_pose_csv
from .classes import synthetic_classes
from .domains import Domain, get_domain
from .render import render_person

log = logging.getLogger(__name__)

MANIFEST = "synthetic.yaml"
PEOPLE = "people.csv"  # per image: id, split, view (front / back), occluded (fraction of the body hidden)
FORMATS = ("lip", "atr")


@dataclass(frozen=True)
class SynthSpec:
    """What to generate; also the ``data.synthetic`` section of a config."""

    num: int = 1000
    domain: str = "A"
    seed: int = 0
    size: int = 256                 # image height; width = height x the domain's aspect
    format: str | None = None       # lip | atr; default: the domain's
    val_fraction: float = 0.2       # LIP: train / val; ATR: val and test get half of it each

    def __post_init__(self) -> None:
        if self.num < 1:
            raise InputError(f"synthetic num must be at least 1, got {self.num}")
        if not 0.0 <= self.val_fraction <= 1.0:
            raise InputError(f"synthetic val_fraction must be in [0, 1], got {self.val_fraction}")
        if not 32 <= self.size <= 4096:
            raise InputError(f"synthetic size must be within 32..4096 pixels, got {self.size}")

    def resolved_format(self, domain: Domain) -> str:
        fmt = self.format or domain.default_format
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r}; expected one of {FORMATS}")
        return fmt


def sample_id(domain: str, index: int) -> str:
    return f"syn{domain}_{index:06d}"


def image_rng(seed: int, domain: str, index: int) -> np.random.Generator:
    """Each image has its own stream: any image can be regenerated alone, in any order."""
    return np.random.default_rng([seed, ord(domain), index])


def _paths(out: Path, fmt: str, split: str, key: str) -> tuple[Path, Path]:
    if fmt == "lip":
        return (out / "TrainVal_images" / f"{split}_images" / f"{key}.jpg",
                out / "TrainVal_parsing_annotations" / f"{split}_segmentations" / f"{key}.png")
    return out / "humanparsing" / "JPEGImages" / f"{key}.jpg", out / "humanparsing" / "SegmentationClassAug" / f"{key}.png"


def _same_spec(manifest: Path, spec: SynthSpec, fmt: str) -> list[str]:
    """The fields in which the data described by ``manifest`` differs from ``spec``."""
    try:
        doc = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise DataError(manifest, f"unreadable synthetic manifest ({err})") from err
    want = {**asdict(spec), "format": fmt}
    # A spec without a format takes either layout; manifests before 0.1.1 recorded the format only
    # when it was given.
    if spec.format is None or doc.get("format") is None:
        want.pop("format")
    return [f"{k} {doc.get(k)!r} (wanted {v!r})" for k, v in want.items() if doc.get(k) != v]


def generate(out: Path | str, spec: SynthSpec, progress: Callable[[int], None] | None = None,
             workers: int | None = None) -> Path:
    """Generates ``spec.num`` people into ``out``; returns the manifest path. ``workers`` processes
    render them (default :func:`default_workers`); the files are the same bytes for any number.

    ``out`` must be missing or empty, or hold synthetic data of exactly this spec (then it is reused
    as it is). Anything else is an error: nothing that is there is overwritten or mixed. The data
    are written into a hidden sibling folder and renamed to ``out`` when complete, so an interrupted
    run never leaves a half-written dataset under the final name. Generation holds a lock on
    ``.NAME.lock`` beside ``out``: processes that ask for the same data at once (the ranks of a
    distributed run) wait for the first and reuse its data, and what a killed generation on this
    machine left (``.NAME.partial-PID@HOST.*``, PID no longer running) is removed by the next one.
    Where the file system cannot lock, each process writes its own copy and the first to finish
    names it; the others find it and reuse it, and no process removes another's folder (nor, there,
    what a killed generation left: delete those by hand). Complete data are reused without writing
    anything, so they may lie on a read-only file system."""
    out = Path(out)
    domain = get_domain(spec.domain)
    fmt = spec.resolved_format(domain)
    if out.exists() and not out.is_dir():
        raise DataError(out, "exists and is not a folder")
    # The manifest is written last and the folder renamed whole: with it, the data are complete and
    # nothing needs writing (not even the lock file, so that read-only copies work).
    if (out / MANIFEST).is_file():
        return _reuse(out, spec, fmt, progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_dir() and not os.access(out, os.W_OK):  # a read-only mount: say so before rendering anything
        raise DataError(out, "is not writable (a read-only mount?): synthetic data cannot be generated there")
    workers = default_workers(spec.num) if workers is None else workers
    if out.is_dir() and os.path.ismount(out):
        # A mounted disk or a container volume cannot be renamed onto: render in it, manifest last.
        return _generate_in_place(out, spec, domain, fmt, progress, workers)
    with file_lock(out.parent / f".{out.name}.lock") as lock:
        if out.is_dir() and any(out.iterdir()):
            return _reuse(out, spec, fmt, progress)
        if lock.held:  # nobody else here is generating: remove what killed generations left
            for partial in out.parent.glob(f".{out.name}.partial-*"):
                _remove_if_abandoned(partial, partial.name.removeprefix(f".{out.name}.partial-"))
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{os.getpid()}@{socket.gethostname()}.",
                                     dir=out.parent))
        try:
            _write_dataset(work, spec, domain, fmt, progress, workers)
            # A process that the lock did not exclude (no flock, or a lock that holds within one
            # machine only) may have named its copy first: then that one is used.
            reuse = (out / MANIFEST).is_file()
            if not reuse:
                try:
                    with contextlib.suppress(FileNotFoundError):
                        if out.is_dir():
                            out.rmdir()  # empty, checked above (Windows cannot rename onto a folder)
                    os.replace(work, out)
                except OSError:
                    if not _appears(out / MANIFEST):
                        raise
                    reuse = True
        except OSError as err:  # a full disk, a quota, permissions: say where
            where = f"{err.filename}" if err.filename else str(out)
            raise OSError(err.errno, f"{err.strerror or err} (writing the synthetic dataset {out}: {where})") from None
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    return _existing(out, spec, fmt) if reuse else out / MANIFEST


def _generate_in_place(out: Path, spec: SynthSpec, domain: Domain, fmt: str, progress: Callable[[int], None] | None,
                       workers: int) -> Path:
    """Generation into a mount point, which cannot be replaced by a rename: the files go straight in,
    the manifest last (an interrupted run leaves a folder without it, which the next run names)."""
    with file_lock(out / f".{MANIFEST}.lock") as _:
        # lost+found: what a new ext4 file system holds
        visible = [p for p in out.iterdir() if p.name not in (f".{MANIFEST}.lock", "lost+found")]
        if visible:
            return _reuse(out, spec, fmt, progress)
        try:
            _write_dataset(out, spec, domain, fmt, progress, workers)
        except OSError as err:
            raise OSError(err.errno, f"{err.strerror or err} (writing the synthetic dataset into the mount point "
                                     f"{out}: {err.filename or out}; empty it before generating again)") from None
    return out / MANIFEST


def _reuse(out: Path, spec: SynthSpec, fmt: str, progress: Callable[[int], None] | None) -> Path:
    manifest = _existing(out, spec, fmt)
    if progress is not None:
        progress(spec.num)
    return manifest


def _remove_if_abandoned(partial: Path, owner: str) -> None:
    """Removes a ``.NAME.partial-PID@HOST.*`` folder that a killed generation left: written on this
    machine by a process that no longer runs (or named without its writer, by earlier versions). Another
    machine's is kept and reported: some file systems lock only within one machine (Lustre's
    ``localflock``), so holding the lock says nothing about other nodes. ``owner``: the folder's name
    after ``.NAME.partial-``."""
    if "@" not in owner:  # mkdtemp's 8 characters alone (anything else is some other folder's)
        if re.fullmatch(r"[a-z0-9_]{8}", owner):
            shutil.rmtree(partial, ignore_errors=True)
        return
    pid, _, host = owner.rsplit(".", 1)[0].partition("@")
    if host != socket.gethostname():
        log.warning("%s: kept, a generation's folder from %s; delete it if no generation runs there", partial, host)
        return
    if not pid.isdigit():
        return
    try:
        os.kill(int(pid), 0)
        return  # still running (a reused pid keeps a leftover until the next time)
    except ProcessLookupError:
        shutil.rmtree(partial, ignore_errors=True)
    except OSError:  # running, as another user
        return


def _appears(path: Path, seconds: float = 5.0) -> bool:
    """Whether ``path`` exists within ``seconds`` (another NFS client's rename can take a moment to
    show)."""
    deadline = time.monotonic() + seconds
    while not path.is_file():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _existing(out: Path, spec: SynthSpec, fmt: str) -> Path:
    """The manifest of the synthetic data already in ``out``, if they are of this spec."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        raise DataError(out, f"folder is not empty and has no {MANIFEST}: synthetic data are generated only "
                             "into a new or empty folder (choose another one, or delete this one, or empty it if "
                             "it is a mount point, if it is an interrupted generation)")
    different = _same_spec(manifest, spec, fmt)
    if different:
        raise DataError(out, "holds synthetic data of another spec: " + "; ".join(different) +
                             " (delete the folder or choose another one)")
    return manifest


def default_workers(num: int) -> int:
    """Processes that render ``num`` images: the cores this process may use, one per 250 images at
    most (starting a process costs about as much as rendering 100 images at 384 px)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, num // 250))


@dataclass(frozen=True)
class _Job:
    """What a worker needs to render and write images (picklable)."""

    out: Path
    spec: SynthSpec
    fmt: str
    hw: tuple[int, int]
    n_val: int


def _render_and_write(job: _Job, index: int) -> tuple[str, str, np.ndarray, str, float]:
    """Renders image ``index`` from its own random stream and writes its files; returns (id, split,
    keypoints, view, occluded). The same bytes in any process, in any order."""
    domain, spec = get_domain(job.spec.domain), job.spec
    key = sample_id(domain.name, index)
    split = "val" if index >= spec.num - job.n_val else "train"
    person = render_person(image_rng(spec.seed, domain.name, index), domain, job.hw)
    image_path, label_path = _paths(job.out, job.fmt, split, key)
    write_image(image_path, person.image)
    write_label(label_path, synthetic_classes().to(job.fmt, person.labels), label_space(job.fmt).palette_array())
    write_iuv(job.out / "densepose" / f"{key}.png", person.dp_index, person.dp_uv)
    return key, split, person.keypoints, person.view, person.occluded


def _die_with_parent(parent: int) -> None:
    """A worker ends when the generating process ``parent`` does (kill -9 included): a forked worker
    keeps the generation lock's file open, and an orphan would hold the lock for ever (Linux;
    elsewhere the workers end when their work queue closes)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the line above ran
            os._exit(1)


def _rendered(job: _Job, workers: int):
    """(id, split, keypoints, view, occluded) of every image in index order, rendered by ``workers``
    processes. Forked where the system can, as PyTorch's data loader workers are (the workers use
    numpy and Pillow only): spawned ones would run the caller's script again, which hangs a script
    without a ``__main__`` guard."""
    if workers <= 1:
        yield from (_render_and_write(job, i) for i in range(job.spec.num))
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_die_with_parent,
                                                initargs=(os.getpid(),)) as pool:
        yield from pool.map(functools.partial(_render_and_write, job), range(job.spec.num), chunksize=8)


def _write_dataset(out: Path, spec: SynthSpec, domain: Domain, fmt: str,
                   progress: Callable[[int], None] | None, workers: int) -> None:
    hw = (spec.size, max(16, round(spec.size * domain.aspect)))
    n_val = int(round(spec.num * spec.val_fraction)) if fmt == "lip" else 0
    splits: dict[str, dict[str, np.ndarray]] = {"train": {}, "val": {}}
    views = {"front": 0, "back": 0}
    people = ["id,split,view,occluded"]
    for key, split, keypoints, view, occluded in _rendered(_Job(out, spec, fmt, hw, n_val), workers):
        splits[split][key] = keypoints
        views[view] += 1
        people.append(f"{key},{split},{view},{occluded:.4f}")
        if progress is not None:
            progress(1)

    if fmt == "lip":
        for split, rows in splits.items():
            write_text(out / "TrainVal_images" / f"{split}_id.txt", "".join(f"{k}\n" for k in rows))
            write_pose_csv(out / "TrainVal_pose_annotations" / f"lip_{split}_set.csv", rows)
    else:
        half = int(round(spec.num * spec.val_fraction / 2))
        write_split(out, out / "humanparsing" / "splits", val=half, test=half)
    write_text(out / PEOPLE, "\n".join(people) + "\n")
    write_text(out / MANIFEST, yaml.safe_dump({"spd_version": __version__, "size_hw": list(hw), "views": views,
                                               **asdict(spec), "format": fmt}, sort_keys=False))


@dataclass(frozen=True)
class PersonRecord:
    """What the generator knows of one synthetic image beyond its labels."""

    id: str
    split: str
    view: str          # "front" or "back"
    occluded: float    # fraction of the body's pixels an occluding object covers (0: none)


def read_people(root: Path | str) -> dict[str, PersonRecord]:
    """id -> :class:`PersonRecord` of a synthetic dataset folder (written by :func:`generate`)."""
    path = Path(root) / PEOPLE
    if not path.is_file():
        raise DataError(path, "not found: the folder is not synthetic data, or was generated before per-image "
                              "records were written (generate it again)")
    out = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        try:
            key, split, view, occluded = fields
            out[key] = PersonRecord(key, split, view, float(occluded))
        except ValueError:
            raise DataError(path, f"expected id,split,view,occluded, got {line!r}", lineno) from None
    return out
