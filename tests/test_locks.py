"""The one file lock (spd.ops.locks) behind the run-folder lock, synthetic generation and the study."""

from __future__ import annotations

from spd.ops import locks


def test_a_held_lock_is_refused_without_waiting_and_free_again_after(tmp_path):
    path = tmp_path / ".lock"
    with locks.file_lock(path) as first:
        assert first.held and not first.unavailable
        # flock belongs to an open file: a second opening conflicts even within one process
        with locks.file_lock(path, wait=False) as second:
            assert not second.held and not second.unavailable
    with locks.file_lock(path, wait=False) as again:
        assert again.held


def test_a_file_system_without_flock_is_reported_not_raised(tmp_path, monkeypatch):
    def no_flock(*args):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(locks.fcntl, "flock", no_flock)
    with locks.file_lock(tmp_path / ".lock", wait=False) as lock:
        assert not lock.held and lock.unavailable == "No locks available"


def test_an_error_in_the_locked_block_is_not_chained_to_the_lock(tmp_path, monkeypatch):
    def no_flock(*args):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(locks.fcntl, "flock", no_flock)
    try:
        with locks.file_lock(tmp_path / ".lock"):
            raise ValueError("the caller's own error")
    except ValueError as err:
        assert err.__context__ is None
