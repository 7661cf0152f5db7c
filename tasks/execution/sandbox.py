"""Isolation levels: what confines a test child beyond its rlimits, session and temp dir.

Weakest to strongest; `auto` picks the strongest this machine supports:

- `process`: rlimits, own session and process group, a private temp dir as cwd, a scrubbed
  environment, stray-process reaping; as root the child also drops every capability and sets
  no_new_privs; a pids cgroup per worker where cgroups are writable. The program can still read
  what the evaluator's user can read, use the network, and signal that user's processes.
- `seccomp`: `process` + a Landlock file-system allow-list (read: the interpreter and system
  libraries; write: the worker's scratch folder; no /proc) + a seccomp filter (no new processes,
  no exec, no sockets, no signals to other processes, no ptrace or mount…; see
  `tasks.execution.seccomp_filter`); as root, test children run under an unprivileged uid when
  the interpreter is readable by it, and otherwise as root without capabilities.
- `bwrap`: every worker inside its own bubblewrap sandbox (`tasks.execution.bwrap`: read-only
  minimal file system, private /tmp, no network, own PID namespace, dies with the dispatcher);
  test children drop to an unprivileged uid (when root) and apply the `seccomp` layers on top when
  they are available.

`prepare` runs once in each worker and returns the `Confinement` whose `confine()` each test
child calls after its rlimits.
"""

from __future__ import annotations

import ctypes
import functools
import os
import site
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from taco_eval import config

PROCESS = "process"
SECCOMP = "seccomp"
BWRAP = "bwrap"
LEVELS = (PROCESS, SECCOMP, BWRAP)  # weakest first
AUTO = "auto"

# Read-only for programs at the strong levels, besides the interpreter's own folders.
SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/localtime")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")

_warned = False


class IsolationUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Confinement:
    level: str
    confine: Callable[[], None]  # runs in the test child, after rlimits
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


def _readable_by_others(path: str) -> bool:
    p = Path(path)
    try:
        if not p.stat().st_mode & stat.S_IROTH:
            return False
        return all(a.stat().st_mode & stat.S_IXOTH for a in [p, *p.parents])
    except OSError:
        return False


def unprivileged_can_import() -> bool:
    """Whether a uid other than ours can read the interpreter (not so under a 0700 /root)."""
    return all(_readable_by_others(p) for p in python_paths())


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
    return None


@functools.lru_cache(maxsize=1)
def _bwrap_problem() -> str | None:
    from tasks.execution import bwrap

    if bwrap.executable() is None:
        return "bwrap is not installed (apt install bubblewrap)"
    if not hasattr(os, "pidfd_open"):
        return "needs os.pidfd_open (Linux >= 5.3, Python >= 3.9)"
    argv = bwrap.command(python_paths(), "import tasks.execution.header, numpy; print('ok')",
                         os.geteuid() == 0)
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
    lines = [bar,
             "WARNING: taco-eval is running untrusted programs with isolation 'process' only.",
             "Programs get rlimits, their own session and a temp dir, but they CAN read every file this",
             "user can read (datasets, expected outputs, keys), use the network, and signal this user's",
             "processes. Do not evaluate untrusted generations like this on a shared machine."]
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
    if os.geteuid() != 0:
        return False
    return level == BWRAP or (level == SECCOMP and unprivileged_can_import())


def describe(level: str) -> dict[str, Any]:
    """What the level amounts to on this machine, for the run manifest."""
    from tasks.execution import bwrap, cgroups, landlock

    strong = level in (SECCOMP, BWRAP)
    return {
        "level": level,
        "bwrap": bwrap.version() if level == BWRAP else None,
        "seccomp_filter": strong and _seccomp_problem() is None,
        "landlock_abi": landlock.abi_version() if strong else 0,
        "unprivileged_uid": drops_uid(level),
        "capabilities_dropped": os.geteuid() == 0,
        "pids_cgroup": cgroups.available(),
        "unavailable": unavailable_reasons(),
    }


# --- in the worker and the test child ---------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
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


def prepare(level: str, worker_index: int, scratch_dir: str | None = None) -> Confinement:
    """Called once per worker process (inside the sandbox for `bwrap`)."""
    from tasks.execution import landlock, seccomp_filter

    root = os.geteuid() == 0
    uid = config.SANDBOX_UID_BASE + worker_index if drops_uid(level) else None
    layers: list[str] = []
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
    if uid is not None:
        layers.append(f"uid {uid}")
    elif root:
        layers.append("no capabilities")

    def confine() -> None:
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

    keep = (ruleset.fd,) if ruleset is not None else ()
    return Confinement(level=level, confine=confine, enforce_nproc=uid is not None, keep_fds=keep, uid=uid,
                       layers=tuple(layers))
