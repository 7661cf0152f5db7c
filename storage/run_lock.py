"""One run of a run id at a time.

Two identical runs (a nightly and a manual retry, say) share a run folder: both would generate every
shard. The first takes an exclusive `flock` on the folder's lock file and writes who holds it (host,
pid, start time); the second waits for it or stops with one line naming the holder. The kernel drops
the lock when its process dies, however it dies, so a lock is never stale after its holder is gone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Callable, Iterator


class RunLocked(Exception):
    """Another process holds the run: the message names it."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def run_lock(
    path: str | os.PathLike, wait: bool, on_wait: Callable[[str], None] | None = None, poll_s: float = 1.0
) -> Iterator[None]:
    """Hold the run's lock for the block; wait for another holder (`wait`) or raise RunLocked."""
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                if not wait:
                    raise RunLocked(f"this run is already running ({holder}); wait for it with --wait") from None
                if on_wait is not None and not told:
                    on_wait(holder)
                    told = True
                time.sleep(poll_s)
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        data = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": started}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        yield
    finally:
        os.close(fd)  # releases the lock
