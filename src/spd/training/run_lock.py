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

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not guarded
    fcntl = None


log = logging.getLogger(__name__)


class RunInUse(FileExistsError):
    pass


# The variables that give a process its rank: torchrun / Lightning's launcher, and SLURM's srun.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID")


def is_main_process() -> bool:
    """False in the extra processes of a distributed run (they share the main process's lock),
    whoever launched them (torchrun, Lightning, or one ``srun`` task per GPU)."""
    return all(os.environ.get(v, "0") == "0" for v in RANK_VARIABLES)


@contextlib.contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    if fcntl is None or not is_main_process():
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise RunInUse(f"{run_dir} is in use by another spd train ({holder}); wait for it to finish, or pick "
                           "another train.name") from None
        except OSError as err:  # file systems without flock (some NFS and Lustre mounts)
            log.warning("%s: cannot lock the run folder (%s); two trainings into it at once would not be refused",
                        run_dir, err.strerror or err)
            yield
            return
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}, since {datetime.datetime.now().isoformat(timespec='seconds')}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
