"""Per-worker cgroups: a process cap, a memory cap and a kill switch that also bind root.

RLIMIT_NPROC is ignored for root, RLIMIT_AS does not see memory held in memfds or tmpfs files,
and a process that forks and exits faster than it is killed outruns any kill loop. So where this
process may create cgroups (root, with a writable cgroup v2 tree whose controllers can be
enabled, or cgroup v1 hierarchies), the dispatcher gives each worker slot its own cgroup:

    <slot>            pids.max: the worker, its test children and their threads together
    <slot>/worker     the worker itself (v2 only: a cgroup with children may hold no process)
    <slot>/tests      every process of the running test: pids.max (threads count), memory.max
                      (swap off), frozen or `cgroup.kill`ed after each test, so descendants of
                      any depth end with it

Each test child joins `tests` itself before it drops its privileges; the worker stays outside the
memory cgroup whose limit the program hits, so the OOM killer only ever picks a process of the
test, and the worker reads the cgroup's OOM counter to report `memory_limit`.
With cgroup v1 the pids, memory and freezer hierarchies are separate trees; each gets the same
layout (the worker joins only the pids one). Elsewhere this is unavailable and the other layers
(seccomp, an unprivileged uid with RLIMIT_NPROC, the subreaper's kill rounds) apply.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import re
import signal
import time
from pathlib import Path

from tasks.execution.limits import Limits

_PREFIX = "taco-eval-"
_serial = itertools.count()
V2 = "v2"
V1_KINDS = ("pids", "memory", "freezer")  # cgroup v1 hierarchies used; pids is required
# memory.max of a test beyond its address-space limit: the pages it copies from the worker on
# write, its stdio buffers; memory RLIMIT_AS does not see (memfds, tmpfs files) counts here.
MEMORY_HEADROOM_MB = 256
KILL_WAIT_S = 2.0


def _mounts() -> dict[str, Path]:
    """Mount points: "v2" for the cgroup2 tree, and each v1 controller we use."""
    found: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        if tail[0] == "cgroup2":
            found.setdefault(V2, Path(fields[4]))
        elif tail[0] == "cgroup":
            for kind in V1_KINDS:
                if kind in tail[2].split(","):
                    found.setdefault(kind, Path(fields[4]))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup in the v2 tree and in each v1 hierarchy we use."""
    found: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            found[V2] = parts[2]
        for kind in V1_KINDS:
            if kind in parts[1].split(","):
                found[kind] = parts[2]
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _bases() -> dict[str, Path]:
    """Where our cgroups are made: {"v2": dir} or {"pids": dir, "memory": dir, "freezer": dir}."""
    if os.geteuid() != 0:
        return {}
    mounts, own = _mounts(), _own_paths()
    v1 = {kind: mounts[kind] / own[kind].lstrip("/") for kind in V1_KINDS if kind in mounts and kind in own}
    v1 = {kind: base for kind, base in v1.items() if (base / "cgroup.procs").exists() and os.access(base, os.W_OK)}
    if "pids" in v1:
        return v1
    if V2 in mounts and V2 in own:
        base = mounts[V2] / own[V2].lstrip("/")
        controllers = _read(base / "cgroup.controllers").split()
        enabled = _read(base / "cgroup.subtree_control").split()
        missing = [c for c in ("pids", "memory") if c in controllers and c not in enabled]
        if missing:
            try:  # only possible where the no-internal-processes rule allows it (the root cgroup)
                (base / "cgroup.subtree_control").write_text(" ".join("+" + c for c in missing))
            except OSError:
                pass
        return {V2: base} if "pids" in _read(base / "cgroup.subtree_control").split() else {}
    return {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Group:
    """One cgroup directory, reached through a directory fd (paths may not exist in a sandbox)."""

    def __init__(self, dir_fd: int, kind: str):
        self.fd, self.kind = dir_fd, kind

    def _read(self, name: str) -> str:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.fd)
        except OSError:
            return ""
        try:  # re-opened each time: a kept cgroup.procs fd re-read at offset 0 returns stale data
            return os.read(fd, 1 << 20).decode()
        except OSError:
            return ""
        finally:
            os.close(fd)

    def _write(self, name: str, value: str) -> bool:
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CLOEXEC, dir_fd=self.fd)
        except OSError:
            return False
        try:
            os.write(fd, value.encode())
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def has(self, name: str) -> bool:
        try:
            os.stat(name, dir_fd=self.fd)
        except OSError:
            return False
        return True

    def pids(self) -> list[int]:
        return [int(p) for p in self._read("cgroup.procs").split()]

    def oom_kills(self) -> int:
        name = "memory.events" if self.kind == V2 else "memory.oom_control"
        for line in self._read(name).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def kill(self) -> None:
        """SIGKILL every process in the cgroup, without letting any fork in between."""
        if self.kind == V2 and self._write("cgroup.kill", "1"):
            return
        frozen = self.kind == "freezer" and self._freeze()
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if frozen:
            self._write("freezer.state", "THAWED")  # killed while frozen: they die as they thaw

    def _freeze(self) -> bool:
        if not self._write("freezer.state", "FROZEN"):
            return False
        # A task stuck in the kernel can hold FREEZING up: kill anyway, frozen or not.
        deadline = time.monotonic() + 0.1
        while self._read("freezer.state").strip() != "FROZEN" and time.monotonic() < deadline:
            time.sleep(0.0002)
        return True


def _kill_until_empty(groups: list[_Group], wait_s: float = KILL_WAIT_S) -> None:
    """Kill rounds until every group is empty: SIGKILLed processes leave their cgroup as they exit."""
    deadline = time.monotonic() + wait_s
    busy = [g for g in groups if g.pids()]
    while busy and time.monotonic() < deadline:
        for g in busy:
            g.kill()
        settle = min(deadline, time.monotonic() + 0.02)
        while True:
            busy = [g for g in groups if g.pids()]
            if not busy or time.monotonic() > settle:
                break
            time.sleep(0.0002)


def _above_stdio(fd: int) -> int:
    """The same file at fd >= 10: a test child dup2s its stdio and result fds over 0-3."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def _open_dir(path: Path | str) -> int:
    return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


class WorkerCgroup:
    """The dispatcher's handle on one worker slot's cgroups (see the module doc for the layout)."""

    def __init__(self, slots: dict[str, Path]):
        self.slots = slots  # kind -> the slot's directory in that hierarchy

    @property
    def version(self) -> str:
        return V2 if V2 in self.slots else "v1"

    @property
    def worker_procs_file(self) -> Path:
        """Where the worker's pid goes: pids.max counts it and its test children together."""
        return self.slots[V2] / "worker" / "cgroup.procs" if V2 in self.slots else self.slots["pids"] / "cgroup.procs"

    @property
    def tests(self) -> dict[str, str]:
        """The `tests` cgroup in every hierarchy, for the worker (`TestCgroup.open`)."""
        return {kind: str(path / "tests") for kind, path in self.slots.items()}

    def add(self, pid: int) -> None:
        self.worker_procs_file.write_text(str(pid))

    def _dirs(self) -> list[tuple[str, Path]]:
        """Every directory of the slot, leaves first (a stale one may hold anything)."""
        out = []
        for kind, slot in self.slots.items():
            for parent, subdirs, _ in os.walk(slot, topdown=False):
                out += [(kind, Path(parent) / d) for d in subdirs]
            if slot.is_dir():
                out.append((kind, slot))
        return out

    def kill_all(self) -> None:
        """SIGKILL everything in the slot (what a dead worker's programs left behind)."""
        fds = []
        try:
            for kind, path in self._dirs():
                try:
                    fds.append((_open_dir(path), kind))
                except OSError:
                    pass
            _kill_until_empty([_Group(fd, kind) for fd, kind in fds])
        finally:
            for fd, _ in fds:
                os.close(fd)

    def remove(self) -> None:
        self.kill_all()
        for _, path in self._dirs():
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while the last processes exit
                    time.sleep(0.01)


def _make(slots: dict[str, Path], limits: Limits) -> None:
    memory = (limits.memory_limit_mb + MEMORY_HEADROOM_MB) * 1024 * 1024
    slot_pids = str(limits.max_processes + 4)  # the worker and a thread or two of its own besides
    if V2 in slots:
        slot = slots[V2]
        slot.mkdir()
        (slot / "pids.max").write_text(slot_pids)
        controllers = _read(slot / "cgroup.controllers").split()
        (slot / "cgroup.subtree_control").write_text(" ".join("+" + c for c in ("pids", "memory") if c in controllers))
        (slot / "worker").mkdir()
        tests = slot / "tests"
        tests.mkdir()
        (tests / "pids.max").write_text(str(limits.max_processes))
        if "memory" in controllers:
            (tests / "memory.max").write_text(str(memory))
            for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                if (tests / name).exists():
                    (tests / name).write_text(value)
        return
    for kind, slot in slots.items():
        slot.mkdir()
        (slot / "tests").mkdir()
        if kind == "pids":
            (slot / "pids.max").write_text(slot_pids)
            (slot / "tests" / "pids.max").write_text(str(limits.max_processes))
        elif kind == "memory":
            (slot / "tests" / "memory.limit_in_bytes").write_text(str(memory))
            if (slot / "tests" / "memory.memsw.limit_in_bytes").exists():  # swap accounting on
                (slot / "tests" / "memory.memsw.limit_in_bytes").write_text(str(memory))


def create(tag: str, limits: Limits) -> WorkerCgroup | None:
    """Fresh cgroups for one worker slot, or None where cgroups cannot be used."""
    bases = _bases()
    if not bases:
        return None
    for kind, base in bases.items():
        _remove_stale(kind, base)
    # Unique per call: several pools of one process must never share (and so kill) a cgroup.
    name = f"{_PREFIX}{os.getpid()}-{next(_serial)}-{tag}"
    cg = WorkerCgroup({kind: base / name for kind, base in bases.items()})
    try:
        _make(cg.slots, limits)
    except OSError:
        cg.remove()
        return None
    return cg


def _remove_stale(kind: str, parent: Path) -> None:
    """Clear cgroups left by dispatchers that were killed (their pid is in the name)."""
    try:
        entries = [p for p in parent.iterdir() if p.name.startswith(_PREFIX)]
    except OSError:
        return
    for entry in entries:
        try:
            owner = int(entry.name[len(_PREFIX) :].split("-", 1)[0])
        except ValueError:
            continue
        if owner != os.getpid() and not _pid_alive(owner):
            WorkerCgroup({kind: entry}).remove()


def available() -> dict[str, str | bool]:
    """What a worker slot gets here: {} where cgroups cannot be used."""
    bases = _bases()
    if not bases:
        return {}
    if V2 in bases:
        base = bases[V2]
        # The root cgroup has no cgroup.kill file even where the kernel (>= 5.14) has it.
        release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
        return {
            "version": V2,
            "pids": True,
            "memory": "memory" in _read(base / "cgroup.subtree_control").split(),
            "kill": "cgroup.kill" if release >= (5, 14) else "kill rounds",
        }
    return {
        "version": "v1",
        "pids": True,
        "memory": "memory" in bases,
        "kill": "freezer" if "freezer" in bases else "kill rounds",
    }


class TestCgroup:
    """The worker's handle on its `tests` cgroups: test children join them, and after each test
    the worker kills whatever is left in them and reads the OOM counter."""

    def __init__(self, dir_fds: dict[str, int]):
        groups = [_Group(fd, kind) for kind, fd in dir_fds.items()]
        # The child writes "0" (itself) to these; opened by the worker while it is root.
        self.join_fds = tuple(
            _above_stdio(os.open("cgroup.procs", os.O_WRONLY | os.O_CLOEXEC, dir_fd=g.fd)) for g in groups
        )
        # Every test process is in all of them: watch and kill through one, the freezer if any.
        self._group = next((g for g in groups if g.kind == "freezer"), groups[0])
        self._memory = next((g for g in groups if g.has("memory.max" if g.kind == V2 else "memory.oom_control")), None)
        self._oom_seen = self._memory.oom_kills() if self._memory is not None else 0

    @classmethod
    def open(cls, spec: dict[str, str | int]) -> "TestCgroup":
        """From the paths `WorkerCgroup.tests` gave, or from directory fds inherited into a sandbox."""
        return cls({kind: where if isinstance(where, int) else _open_dir(where) for kind, where in spec.items()})

    def join(self) -> None:
        """In the test child, first thing: it and everything it starts belong to the test."""
        for fd in self.join_fds:
            os.write(fd, b"0")
            os.close(fd)

    def end_test(self) -> bool:
        """Kill every process the test left (any depth); True if the OOM killer struck in it."""
        _kill_until_empty([self._group])
        if self._memory is None:
            return False
        seen, self._oom_seen = self._oom_seen, self._memory.oom_kills()
        return self._oom_seen > seen
