"""Isolation levels: what confines a test child beyond its rlimits, session and temp dir.

Weakest to strongest; `auto` picks the strongest this machine supports. At every level, where
cgroups are writable (root), each worker has a pids cap, and every test runs in a `tests` cgroup
with a memory limit that is killed as a whole after the test (`tasks.execution.cgroups`).

- `process`: rlimits, own session and process group, a private temp dir as cwd, a scrubbed
  environment, stray-process reaping. As root: the worker lives in a private mount namespace
  (its own small /dev/shm, emptied after each test; the cgroup tree hidden, so a child cannot
  leave its cgroup), each test child gets a fresh IPC namespace (its System V and POSIX IPC
  objects die with it), then drops every capability and sets no_new_privs; with libseccomp a
  small filter on the worker denies new namespaces to it and its children. The program can still
  read what the evaluator's user can read, use the network, and signal that user's processes.
- `seccomp`: `process` + a Landlock file-system allow-list (read: the interpreter and system
  libraries; write: the worker's scratch folder; no /proc, no /dev/shm) + a seccomp filter (no
  new processes, no exec, no sockets, no IPC objects, no memfds, no signals to other processes,
  no ptrace or mount…; see `tasks.execution.seccomp_filter`). As root, test children always run
  under an unprivileged uid: where other users cannot reach the interpreter (a pyenv under a 0700
  /root), the worker's private mount namespace exposes its folders read-only to that uid, and
  where even that is impossible the level is unavailable rather than run as uid 0.
- `bwrap`: every worker inside its own bubblewrap sandbox (`tasks.execution.bwrap`: read-only
  minimal file system, private /tmp, no network, own PID and IPC namespaces, dies with the
  dispatcher); test children drop to an unprivileged uid (when root) and apply the `seccomp`
  layers on top when they are available.

`prepare` runs once in each worker and returns the `Confinement` whose `confine()` each test
child calls after its rlimits, and whose `end_test()` the worker calls after each test.
"""

from __future__ import annotations

import ctypes
import functools
import os
import site
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tasks import defaults
from tasks.execution import scratch

PROCESS = "process"
SECCOMP = "seccomp"
BWRAP = "bwrap"
LEVELS = (PROCESS, SECCOMP, BWRAP)  # weakest first
AUTO = "auto"

# Read-only for programs at the strong levels, besides the interpreter's own folders.
SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/localtime")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
SHM_BYTES = 64 * 1024 * 1024  # the worker's private /dev/shm at `process` (RAM no rlimit counts)
CGROUP_FS = "/sys/fs/cgroup"

_warned = False


class IsolationUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Confinement:
    level: str
    confine: Callable[[], None]  # runs in the test child, after rlimits
    end_test: Callable[[], bool]  # in the worker after each test: kill leftovers; True if OOM-killed
    enforce_nproc: bool
    keep_fds: tuple[int, ...] = ()  # fds `confine` needs: the runner must not close them first
    uid: int | None = None  # the unprivileged uid test children run as, if any
    layers: tuple[str, ...] = field(default_factory=tuple)


# --- what a program may read -----------------------------------------------------------------


def _collapse(paths: list[str]) -> list[str]:
    """Existing paths, resolved, without ones nested in another of the list."""
    real = sorted({os.path.realpath(p) for p in paths if p and os.path.exists(p)})
    out: list[str] = []
    for p in real:
        if p == "/" or any(p == q or p.startswith(q + "/") for q in out):
            continue
        out.append(p)
    return out


def python_paths() -> list[str]:
    """The interpreter's folders: prefixes and site-packages (never the project or data folders)."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    try:
        candidates += site.getsitepackages()
    except AttributeError:
        pass
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if user_site and user_site in sys.path:
        candidates.append(user_site)
    system = [os.path.realpath(p) for p in SYSTEM_READ if os.path.isdir(p)]
    return [p for p in _collapse(candidates) if not any(p == s or p.startswith(s + "/") for s in system)]


def readable_paths() -> list[str]:
    return list(SYSTEM_READ) + python_paths()


def _closed_ancestor(path: str) -> str | None:
    """The topmost folder above `path` that other users cannot enter (a 0700 /root), if any."""
    for parent in sorted(Path(path).parents):  # "/" first
        try:
            if not parent.stat().st_mode & stat.S_IXOTH:
                return str(parent)
        except OSError:
            return None
    return None


def _unreadable_by_others(path: str) -> bool:
    try:
        return (os.stat(path).st_mode & (stat.S_IROTH | stat.S_IXOTH)) != (stat.S_IROTH | stat.S_IXOTH)
    except OSError:
        return True


def unprivileged_can_import() -> bool:
    """Whether a uid other than ours can read the interpreter as it is (not so under a 0700 /root)."""
    return not any(_closed_ancestor(p) or _unreadable_by_others(p) for p in python_paths())


# --- availability ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _seccomp_problem() -> str | None:
    from tasks.execution import landlock, seccomp_filter

    try:
        seccomp_filter.CompiledFilter()
    except seccomp_filter.SeccompUnavailable as exc:
        return str(exc) + " (pip install pyseccomp; apt install libseccomp2)"
    if landlock.abi_version() < 1:
        return "the kernel has no Landlock (Linux >= 5.13 with landlock in the LSM list)"
    if os.geteuid() == 0 and not unprivileged_can_import():
        why = _namespace_problem(SECCOMP)
        if why is not None:
            closed = sorted(
                {_closed_ancestor(p) or p for p in python_paths() if _closed_ancestor(p) or _unreadable_by_others(p)}
            )
            return (
                f"as root, test children must run as an unprivileged uid, but other users cannot read the "
                f"interpreter (under {', '.join(closed)}) and a private mount namespace could not expose it "
                f"({why}); install Python where other users can read it (/usr/local, /opt) or run as a "
                "non-root user"
            )
    return None


@functools.lru_cache(maxsize=1)
def _bwrap_problem() -> str | None:
    from tasks.execution import bwrap

    if bwrap.executable() is None:
        return "bwrap is not installed (apt install bubblewrap)"
    if not hasattr(os, "pidfd_open"):
        return "needs os.pidfd_open (Linux >= 5.3, Python >= 3.9)"
    argv = bwrap.command(python_paths(), "import tasks.execution.header, numpy; print('ok')", os.geteuid() == 0)
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap cannot start: {exc}"
    if out.returncode != 0 or out.stdout.strip() != "ok":
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return f"bwrap cannot start a sandbox here: {tail}"
    return None


def unavailable_reasons() -> dict[str, str]:
    reasons = {}
    for level, problem in ((SECCOMP, _seccomp_problem), (BWRAP, _bwrap_problem)):
        why = problem()
        if why is not None:
            reasons[level] = why
    return reasons


def available_levels() -> list[str]:
    reasons = unavailable_reasons()
    return [level for level in LEVELS if level not in reasons]


def _warn_process_only(reasons: dict[str, str]) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    bar = "!" * 78
    lines = [
        bar,
        "WARNING: taco-eval is running untrusted programs with isolation 'process' only.",
        "Programs get rlimits, their own session and a temp dir, but they CAN read every file this",
        "user can read (datasets, expected outputs, keys), use the network, and signal this user's",
        "processes. Do not evaluate untrusted generations like this on a shared machine.",
    ]
    lines += [f"  {level} unavailable: {why}" for level, why in reasons.items()]
    lines += ["Install bubblewrap (apt install bubblewrap) and pyseccomp (pip install pyseccomp).", bar]
    print("\n".join(lines), file=sys.stderr, flush=True)


def resolve(level: str) -> str:
    """The concrete level for a requested one (`auto` → the strongest available)."""
    if level == AUTO:
        chosen = available_levels()[-1]
        if chosen == PROCESS:
            _warn_process_only(unavailable_reasons())
        return chosen
    if level not in LEVELS:
        raise IsolationUnavailable(f"unknown isolation level '{level}' (choose auto, {', '.join(LEVELS)})")
    why = unavailable_reasons().get(level)
    if why is not None:
        raise IsolationUnavailable(f"isolation level '{level}' is not available on this machine: {why}")
    return level


def drops_uid(level: str) -> bool:
    """Test children run as an unprivileged uid (as root at the strong levels: never as uid 0)."""
    return os.geteuid() == 0 and level in (SECCOMP, BWRAP)


def describe(level: str) -> dict[str, Any]:
    """What the level amounts to on this machine, for the run manifest."""
    from tasks.execution import bwrap, cgroups, landlock, seccomp_filter

    strong = level in (SECCOMP, BWRAP)
    root = os.geteuid() == 0
    namespaces = root and level != BWRAP and _namespace_problem(level) is None
    cg = cgroups.available()
    try:
        seccomp_filter.CompiledFilter(seccomp_filter.NAMESPACES)
        namespace_filter = True
    except seccomp_filter.SeccompUnavailable:
        namespace_filter = False
    if level == BWRAP:
        ipc = "per worker sandbox"
    elif namespaces:
        ipc = "per test" if level == PROCESS else "per worker"
    else:
        ipc = None
    return {
        "level": level,
        "bwrap": bwrap.version() if level == BWRAP else None,
        "seccomp_filter": strong and _seccomp_problem() is None,
        "namespaces_denied": (strong and _seccomp_problem() is None) or (level == PROCESS and namespace_filter),
        "landlock_abi": landlock.abi_version() if strong else 0,
        "unprivileged_uid": drops_uid(level),
        "interpreter_exposed_to_uid": level == SECCOMP and root and not unprivileged_can_import(),
        "capabilities_dropped": root,
        "ipc_namespace": ipc,
        "private_dev_shm": level == PROCESS and namespaces,
        "pids_cgroup": f"cgroup {cg['version']} pids" if cg else None,
        "memory_cgroup": bool(cg.get("memory")),
        "strays_killed_by": cg.get("kill") or "subreaper kill rounds",
        "unavailable": unavailable_reasons(),
    }


# --- the worker's private namespaces (as root) ------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_SLAVE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 19


def _checked(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _unshare(flags: int) -> None:
    _checked(_libc.unshare(flags), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(v: str | None) -> bytes | None:
        return v.encode() if v is not None else None

    _checked(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _expose(read_only: list[str], writable: list[str]) -> list[str]:
    """Make folders under a closed ancestor reachable by the test children's uid, in this mount
    namespace only (host permissions untouched): the closed folder is covered with a tmpfs that
    holds just the path down to each folder, and the real folder is bound there. Returns the
    covered folders. Everything else under them is hidden from the worker too: it has imported
    what it runs, and its scratch folder is among `writable`."""
    wanted = sorted({(p, False) for p in read_only} | {(p, True) for p in writable})
    by_top: dict[str, list[tuple[str, bool]]] = {}
    for path, rw in wanted:
        top = _closed_ancestor(path)
        if top is not None and not any(path.startswith(q + "/") for q, _ in wanted):
            by_top.setdefault(top, []).append((path, rw))
    # Opened before any cover goes on: a covered path can still be bound through its fd.
    sources = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for paths in by_top.values() for path, _ in paths}
    try:
        for top, paths in by_top.items():
            _mount("tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
            for path, rw in paths:
                current = Path(top)
                for part in Path(path).relative_to(top).parts:
                    current = current / part
                    if not current.exists():
                        current.mkdir()
                        current.chmod(0o755)
                _mount(f"/proc/self/fd/{sources[path]}", path, None, MS_BIND | MS_REC)
                if not rw:
                    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
            _mount(None, top, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    finally:
        for fd in sources.values():
            os.close(fd)
    return sorted(by_top)


def _private_namespaces(level: str, scratch_dir: str) -> list[str]:
    """In the worker, as root: its own mount and IPC namespaces, set up for `level`; returns layers."""
    from tasks.execution import bwrap

    _unshare(CLONE_NEWNS | CLONE_NEWIPC)
    _mount(None, "/", None, MS_REC | MS_SLAVE)  # nothing mounted from here on reaches the host
    layers = ["private mount and IPC namespaces"]
    if level == PROCESS:
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={SHM_BYTES},nr_inodes=1024")
        layers.append("private /dev/shm")
        if os.path.isdir(CGROUP_FS):  # a capability-less uid 0 owns the cgroup files: hide them
            _mount("tmpfs", CGROUP_FS, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0555,size=4k")
    elif level == SECCOMP:
        covered = _expose(python_paths() + [bwrap.project_root()], [scratch_dir])
        layers += [f"{top} covered, interpreter exposed" for top in covered]
    return layers


def _probe(level: str) -> None:
    """Run in a fresh interpreter (`_namespace_problem`): set up a worker's namespaces for `level`
    and, for `seccomp`, check that the unprivileged uid can then list every interpreter folder."""
    with tempfile.TemporaryDirectory() as scratch:
        _private_namespaces(level, scratch)
        if level == SECCOMP:
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    uid = defaults.SANDBOX_UID_BASE
                    os.setgroups([])
                    os.setresgid(uid, uid, uid)
                    os.setresuid(uid, uid, uid)
                    for path in python_paths():
                        os.listdir(path)
                    code = 0
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit("the unprivileged uid still cannot list the interpreter's folders")
    print("ok")


@functools.lru_cache(maxsize=None)
def _namespace_problem(level: str) -> str | None:
    """Why a worker could not set up its private namespaces for `level` here (None: it can)."""
    from tasks.execution import bwrap

    if os.geteuid() != 0:
        return "not root"
    env = dict(os.environ, PYTHONPATH=bwrap.project_root())
    try:
        out = subprocess.run(
            [sys.executable, "-c", f"from tasks.execution import sandbox; sandbox._probe({level!r})"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if out.returncode == 0 and out.stdout.strip() == "ok":
        return None
    return (out.stderr.strip().splitlines() or ["no output"])[-1]


# --- in the worker and the test child ---------------------------------------------------------

_CAP_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAP_HEADER = _CapHeader(_CAP_VERSION_3, 0)
_NO_CAPS = (_CapData * 2)()


def drop_capabilities() -> None:
    """Clear every capability of this process (it stays uid 0 but loses root's powers)."""
    if _libc.capset(ctypes.byref(_CAP_HEADER), _NO_CAPS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def _empty_folder(path: str) -> None:
    try:
        entries = os.listdir(path)
    except OSError:
        return
    for name in entries:
        scratch.remove_tree(os.path.join(path, name))  # deep trees, odd modes, symlinks: see scratch


def prepare(
    level: str, worker_index: int, scratch_dir: str | None = None, cgroup: dict[str, str | int] | None = None
) -> Confinement:
    """Called once per worker process (inside the sandbox for `bwrap`). `cgroup`: the slot's
    `tests` cgroups (`cgroups.WorkerCgroup.tests`, or directory fds inherited into a sandbox)."""
    from tasks.execution import cgroups, landlock, seccomp_filter

    root = os.geteuid() == 0
    uid = defaults.SANDBOX_UID_BASE + worker_index if drops_uid(level) else None
    layers: list[str] = []
    # Opened before the mount namespace hides the cgroup tree.
    tests_cgroup = cgroups.TestCgroup.open(cgroup) if cgroup else None
    if tests_cgroup is not None:
        layers.append("tests cgroup")
    namespaces = False
    if root and level != BWRAP and scratch_dir is not None:
        try:
            layers += _private_namespaces(level, scratch_dir)
            namespaces = True
        except OSError:
            if level == SECCOMP and not unprivileged_can_import():
                raise  # never run programs as uid 0 at `seccomp`: `_seccomp_problem` said so first
    fresh_ipc = level == PROCESS and namespaces  # an IPC namespace per test, a private /dev/shm
    ruleset = compiled = None
    if level in (SECCOMP, BWRAP):
        try:
            compiled = seccomp_filter.CompiledFilter()
            layers.append("seccomp")
        except seccomp_filter.SeccompUnavailable:
            if level == SECCOMP:
                raise
        if scratch_dir is not None and landlock.abi_version() >= 1:
            ruleset = landlock.Ruleset(readable_paths(), [scratch_dir], DEVICES)
            layers.append(f"landlock-abi{ruleset.abi}")
        elif level == SECCOMP:
            raise landlock.LandlockError(0, "Landlock is not available")
    else:
        try:
            worker_filter = seccomp_filter.CompiledFilter(seccomp_filter.NAMESPACES)
        except seccomp_filter.SeccompUnavailable:
            pass
        else:  # once, here: a filter load costs ~0.2 ms, and test children inherit it
            seccomp_filter.set_no_new_privs()  # the worker never execs
            worker_filter.load(os.getpid())
            layers.append("seccomp: no new namespaces")
    if uid is not None:
        layers.append(f"uid {uid}")
    elif root:
        layers.append("no capabilities")

    def confine() -> None:
        if tests_cgroup is not None:
            tests_cgroup.join()
        if fresh_ipc:
            _unshare(CLONE_NEWIPC)  # its IPC objects die with the test's last process
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)  # from root: clears every capability
        elif root:
            drop_capabilities()
        seccomp_filter.set_no_new_privs()
        if ruleset is not None:
            ruleset.restrict_self()
            os.close(ruleset.fd)
        if compiled is not None:
            compiled.load(os.getpid())  # last: it denies some of the calls above

    def end_test() -> bool:
        out_of_memory = tests_cgroup.end_test() if tests_cgroup is not None else False
        if fresh_ipc:
            _empty_folder("/dev/shm")  # the worker's own: POSIX shm of the test goes with it
        return out_of_memory

    keep = (ruleset.fd,) if ruleset is not None else ()
    if tests_cgroup is not None:
        keep += tests_cgroup.join_fds
    return Confinement(
        level=level,
        confine=confine,
        end_test=end_test,
        enforce_nproc=uid is not None,
        keep_fds=keep,
        uid=uid,
        layers=tuple(layers),
    )
