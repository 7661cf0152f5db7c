"""A pids cgroup per execution worker: a process/thread cap that also binds root.

RLIMIT_NPROC is ignored for root, so a fork bomb run by a root evaluator at the `process` level
would take the machine down. Where this process may create cgroups (root, with a writable cgroup v2
tree whose `pids` controller can be enabled, or a cgroup v1 `pids` hierarchy), the dispatcher
gives each worker slot its own cgroup with `pids.max` set; the worker and every process its
programs create live in it, and whatever is left in it when the worker goes is killed.
Elsewhere this is simply unavailable and the other layers (seccomp, an unprivileged uid) apply.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

_PREFIX = "taco-eval-"
_serial = itertools.count()


def _mounts() -> tuple[Path | None, Path | None]:
    """(cgroup v2 mount, cgroup v1 `pids` mount)."""
    v2 = v1 = None
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        if tail[0] == "cgroup2" and v2 is None:
            v2 = Path(fields[4])
        elif tail[0] == "cgroup" and "pids" in tail[2].split(",") and v1 is None:
            v1 = Path(fields[4])
    return v2, v1


def _own_paths() -> tuple[str | None, str | None]:
    """This process's cgroup path in the v2 tree and in the v1 pids hierarchy."""
    v2 = v1 = None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "pids" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def _parent_dir() -> tuple[Path, str] | None:
    """A folder where pids-limited child cgroups can be made, and the cgroup version."""
    if os.geteuid() != 0:
        return None
    mount_v2, mount_v1 = _mounts()
    own_v2, own_v1 = _own_paths()
    if mount_v1 is not None and own_v1 is not None:
        base = mount_v1 / own_v1.lstrip("/")
        if (base / "cgroup.procs").exists() and os.access(base, os.W_OK):
            return base, "v1"
    if mount_v2 is not None and own_v2 is not None:
        base = mount_v2 / own_v2.lstrip("/")
        try:
            controllers = (base / "cgroup.controllers").read_text().split()
            if "pids" not in controllers:
                return None
            if "pids" not in (base / "cgroup.subtree_control").read_text().split():
                # Only possible where the no-internal-processes rule allows it (the root cgroup).
                (base / "cgroup.subtree_control").write_text("+pids")
        except OSError:
            return None
        return base, "v2"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PidsCgroup:
    def __init__(self, path: Path, version: str):
        self.path = path
        self.version = version

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def add(self, pid: int) -> None:
        self.procs_file.write_text(str(pid))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in self.procs_file.read_text().split()]
        except OSError:
            return []

    def kill_all(self, wait_s: float = 2.0) -> None:
        """SIGKILL everything in the cgroup (a fork bomb cannot outrun a frozen/killed group)."""
        kill_file = self.path / "cgroup.kill"
        if self.version == "v2" and kill_file.exists():
            try:
                kill_file.write_text("1")
            except OSError:
                pass
        deadline = time.monotonic() + wait_s
        while True:
            pids = self.pids()
            if not pids or time.monotonic() > deadline:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.005)

    def remove(self) -> None:
        self.kill_all()
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # EBUSY while the last processes exit
                time.sleep(0.01)


def create(tag: str, max_pids: int) -> PidsCgroup | None:
    """A fresh pids cgroup limited to `max_pids` tasks, or None where cgroups cannot be used."""
    found = _parent_dir()
    if found is None:
        return None
    parent, version = found
    _remove_stale(parent, version)
    # Unique per call: several pools of one process must never share (and so kill) a cgroup.
    path = parent / f"{_PREFIX}{os.getpid()}-{next(_serial)}-{tag}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(max_pids))
    except OSError:
        try:
            path.rmdir()
        except OSError:
            pass
        return None
    return PidsCgroup(path, version)


def _remove_stale(parent: Path, version: str) -> None:
    """Clear cgroups left by dispatchers that were killed (their pid is in the name)."""
    try:
        entries = [p for p in parent.iterdir() if p.name.startswith(_PREFIX)]
    except OSError:
        return
    for entry in entries:
        try:
            owner = int(entry.name[len(_PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        if owner != os.getpid() and not _pid_alive(owner):
            PidsCgroup(entry, version).remove()


def available() -> str | None:
    found = _parent_dir()
    return None if found is None else f"cgroup {found[1]} pids"
