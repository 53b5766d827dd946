"""One ``spd train`` per run folder at a time: two runs writing the same folder would mix their
checkpoints and logs. The lock is an advisory ``flock`` on ``RUN/.lock``, which the system drops
when the holder exits, however it exits (kill -9 included), so a stale lock cannot block a rerun."""

from __future__ import annotations

import contextlib
import datetime
import os
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

from ..ops.errors import SPDError
from ..ops.locks import LOCKING, file_lock


log = logging.getLogger(__name__)


class RunInUse(SPDError, FileExistsError):
    pass


# The variables that give a process its rank: torchrun / Lightning's launcher, SLURM's srun and
# LSF's jsrun (the ones Lightning itself reads).
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID",
                  "JSM_NAMESPACE_RANK")


def is_main_process() -> bool:
    """False in the extra processes of a distributed run (they share the main process's lock),
    whoever launched them (torchrun, Lightning, one ``srun`` task per GPU, or LSF's ``jsrun``)."""
    return all(os.environ.get(v, "0") == "0" for v in RANK_VARIABLES)


@contextlib.contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    if not is_main_process() or not LOCKING:  # Windows: runs there are not guarded
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(run_dir / ".lock", wait=False) as lock:
        if lock.unavailable:
            log.warning("%s: cannot lock the run folder (%s); two trainings into it at once would not be refused",
                        run_dir, lock.unavailable)
            yield
            return
        if not lock.held:
            lock.file.seek(0)
            holder = lock.file.read().strip() or "another process"
            raise RunInUse(f"{run_dir} is in use by another spd train ({holder}); wait for it to finish, or pick "
                           "another train.name")
        lock.file.seek(0)
        lock.file.truncate()
        lock.file.write(f"pid {os.getpid()} on {socket.gethostname()}, "
                        f"since {datetime.datetime.now().isoformat(timespec='seconds')}\n")
        lock.file.flush()
        yield
