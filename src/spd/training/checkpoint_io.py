"""Checkpoints written atomically (temporary name, then rename): an interrupted save never leaves
a half-written file where a resume would look for it. The temporary is a hidden ``.NAME.*.partial``
that nothing takes for a checkpoint; one left by a killed process is removed when a run next
starts in that folder (:func:`clean_checkpoint_folder`)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..ops.atomic import atomic_path


log = logging.getLogger(__name__)
PARTIAL = ".partial"
STEP = re.compile(r"-step(\d+)\.ckpt$")


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        with atomic_path(path, temp_suffix=PARTIAL) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


def checkpoints_in(folder: Path) -> list[Path]:
    """The finished checkpoints of a run folder (hidden temporaries excluded)."""
    return sorted(folder.glob("[!.]*.ckpt"))


def clean_checkpoint_folder(folder: Path, resume_step: int | None) -> list[Path]:
    """Removes what a killed run leaves in its checkpoint folder: temporaries of interrupted saves
    (and of versions that named them ``.*.tmp.ckpt``) and, when resuming from step
    ``resume_step``, step checkpoints written after it (saved just before a kill, ahead of
    ``last.ckpt``: no longer part of the run, and unknown to the checkpoint rotation, which would
    keep them forever). Returns the removed paths. Call with the run folder locked."""
    removed = [p for p in folder.glob(f".*{PARTIAL}")] + [p for p in folder.glob(".*.tmp.ckpt")]
    if resume_step is not None:
        removed += [p for p in checkpoints_in(folder) if (m := STEP.search(p.name)) and int(m.group(1)) > resume_step]
    for path in removed:
        path.unlink(missing_ok=True)
        log.warning("removed %s, left by an interrupted run", path)
    return removed
