"""One run of a run id at a time.

Two identical runs (a nightly and a manual retry, say) share a run folder: both would generate every
shard. The first takes an exclusive `flock` on the folder's lock file and writes who holds it (host,
pid, start time); the second waits for it or stops with one line naming the holder. The kernel drops
the lock when its process dies, however it dies, so a lock is never stale after its holder is gone.

Object storage (an `s3://` run folder) has no flock; the lock is a lease object at the same key:
- claimed with a conditional create (`IfNoneMatch="*"`): one claimer wins;
- renewed by its holder every quarter of `lease_s` with a conditional put on the version it wrote
  (`IfMatch`), so the holder learns if it lost the lease;
- stale when not renewed for `lease_s` (measured from the object's last-modified time, the
  store's clock, against this machine's: clocks must agree to well within `lease_s`); a claimer
  takes a stale lease over with a conditional put on the version it found, so two claimers cannot
  both take it;
- taken over at once when its holder ran on the same host and that process is gone (a killed
  run resumed on the machine it ran on);
- deleted on release only if it is still the holder's version.
The guarantee is narrower than flock's: a holder that stops renewing for `lease_s` (a process
frozen, a network cut) loses the run to the next claimer, and then logs that it lost it. A holder
killed on another host leaves its lease behind until it goes stale: a run started there within
`lease_s` of the kill waits (`--wait`) or stops naming the dead holder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from storage.fs import Conflict, RemotePath, location

log = logging.getLogger(__name__)


class RunLocked(Exception):
    """Another process holds the run: the message names it."""


def _holder(path: Path) -> str:
    try:
        return _describe(json.loads(path.read_text() or "{}"))
    except (OSError, ValueError):
        return "another process"


def _describe(info: Any) -> str:
    try:
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def run_lock(
    path: str | os.PathLike | RemotePath,
    wait: bool,
    on_wait: Callable[[str], None] | None = None,
    poll_s: float = 1.0,
    lease_s: float | None = None,
) -> Iterator[None]:
    """Hold the run's lock for the block; wait for another holder (`wait`) or raise RunLocked.

    `lease_s`: for a run folder on object storage (required there), how long a lease lives without
    renewal; a local lock is an flock and ignores it.
    """
    where = location(path)
    if isinstance(where, RemotePath):
        if lease_s is None:
            raise ValueError(f"{where}: a run lock on object storage is a lease; pass lease_s")
        with _lease(where, wait, on_wait, poll_s, lease_s):
            yield
        return
    fd = os.open(where, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(where)
                if not wait:
                    raise RunLocked(f"this run is already running ({holder}); wait for it with --wait") from None
                if on_wait is not None and not told:
                    on_wait(holder)
                    told = True
                time.sleep(poll_s)
        data = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": _now()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _lease(
    path: RemotePath, wait: bool, on_wait: Callable[[str], None] | None, poll_s: float, lease_s: float
) -> Iterator[None]:
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now(), "lease_s": lease_s}
    me["token"] = uuid.uuid4().hex
    beat = _Heartbeat(path, me, _claim(path, me, wait, on_wait, poll_s, lease_s), lease_s)
    beat.start()
    try:
        yield
    finally:
        tag = beat.stop()
        if tag is not None:
            path.delete_if(tag)


def _body(holder: dict[str, Any], renewals: int) -> bytes:
    # The renewal count changes the bytes, hence the version tag, on every renewal.
    return json.dumps({**holder, "renewed": _now(), "renewals": renewals}).encode()


def _claim(
    path: RemotePath,
    me: dict[str, Any],
    wait: bool,
    on_wait: Callable[[str], None] | None,
    poll_s: float,
    lease_s: float,
) -> str:
    """Create the lease, or take over a stale one; returns the version tag written."""
    told = False
    while True:
        try:
            return path.create(_body(me, 0))
        except FileExistsError:
            pass
        try:
            data, tag, modified = path.read_tagged()
        except FileNotFoundError:
            continue  # released between our attempt and the read: try again
        try:
            info = json.loads(data or b"{}")
        except ValueError:
            info = {}
        if not isinstance(info, dict):
            info = {}
        age = (dt.datetime.now(dt.timezone.utc) - modified).total_seconds() if modified else 0.0
        dead = _dead_here(info)
        if dead or age > float(info.get("lease_s", lease_s)):
            try:
                taken = path.replace(_body(me, 0), tag)
            except Conflict:
                continue  # renewed, released or taken by another claimer meanwhile
            why = "its process is gone" if dead else f"not renewed for {age:.0f} s"
            log.warning("took over the lease of %s on %s: %s", _describe(info), path, why)
            return taken
        holder = f"{_describe(info)}, lease renewed {age:.0f} s ago"
        if not wait:
            raise RunLocked(f"this run is already running ({holder}); wait for it with --wait")
        if on_wait is not None and not told:
            on_wait(holder)
            told = True
        time.sleep(poll_s)


def _dead_here(info: dict[str, Any]) -> bool:
    """Whether the holder ran on this host and its process no longer exists (a killed run: its
    lease need not run out before the run is resumed here)."""
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, another user's
        return False
    return False


class _Heartbeat:
    """Renews the lease every quarter of `lease_s` until stopped; notices when it was taken over."""

    def __init__(self, path: RemotePath, me: dict[str, Any], tag: str, lease_s: float):
        self.path, self.me, self.tag, self.interval = path, me, tag, lease_s / 4
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="taco-eval-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        renewals = 0
        while not self._stop.wait(self.interval):
            renewals += 1
            try:
                self.tag = self.path.replace(_body(self.me, renewals), self.tag)
            except Conflict:
                log.error("lost the run lease %s: another process took the run over", self.path)
                self.tag = None
                return
            except OSError as exc:  # a network hiccup: the next renewal may get through
                log.warning("could not renew the run lease %s: %s", self.path, exc)

    def stop(self) -> str | None:
        """Stop renewing; the version tag still held, or None if the lease was lost."""
        self._stop.set()
        self._thread.join()
        return self.tag
