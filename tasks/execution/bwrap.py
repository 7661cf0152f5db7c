"""The `bwrap` level: each execution worker lives in its own persistent bubblewrap sandbox.

The dispatcher starts `bwrap … python -c <entry>` instead of a plain spawned worker and talks to
it over an inherited socket, exactly as with a spawned one. Inside the sandbox:

- the file system is a fresh tmpfs root holding, read-only, only the system's and the
  interpreter's library folders and the evaluator's own execution modules (file by file): no
  dataset, no run folder, no home, no project data; /tmp is a private, size-capped tmpfs;
- own PID, network (loopback only, nothing reachable), IPC and UTS namespaces; /proc shows only
  the sandbox; a fresh session; the environment is cleared;
- the sandbox dies with the dispatcher (`--die-with-parent`) and with its worker (PID namespace);
- as root the worker keeps only the capabilities it needs to run test children under an
  unprivileged uid (setuid/setgid, kill, chown, and file-owner overrides to hand them their work
  dir and clean it up).

Test children then drop to that uid and apply the seccomp filter and Landlock where available
(see `tasks.execution.sandbox`).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

TMPFS_BYTES = 512 * 1024 * 1024  # the sandbox's /tmp: its programs' scratch space, in memory
# Modules the worker imports (bound into the sandbox file by file, never whole project folders).
WORKER_MODULES = (
    "tasks",
    "tasks.defaults",
    "tasks.statuses",
    "tasks.execution",
    "tasks.execution.worker",
    "tasks.execution.header",
    "tasks.execution.runner",
    "tasks.execution.child",
    "tasks.execution.limits",
    "tasks.execution.sandbox",
    "tasks.execution.landlock",
    "tasks.execution.seccomp_filter",
    "tasks.execution.cgroups",
    "tasks.execution.bwrap",
    "tasks.execution.scratch",
    "tasks.execution.testdata",
)
_WORKER_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
_SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}


def executable() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def version() -> str:
    exe = executable()
    if exe is None:
        return ""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip().split()[-1] if out.strip() else ""


@functools.lru_cache(maxsize=1)
def _supports(option: str) -> bool:
    exe = executable()
    try:
        out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError, TypeError):
        return False
    return option in out.stdout + out.stderr


def module_files(names: Iterable[str] = WORKER_MODULES) -> list[str]:
    files = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin and os.path.isfile(spec.origin):
            files.append(spec.origin)
    return files


def project_root() -> str:
    """The folder holding the `tasks` package (it goes first on the sandbox's sys.path)."""
    return str(Path(module_files(["tasks"])[0]).resolve().parent.parent)


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parts
    return [str(Path(*parts[:i])) for i in range(2, len(parts))]


def command(library_paths: list[str], code: str, root: bool) -> list[str]:
    """The bwrap command line that runs the Python statements `code` in a fresh sandbox."""
    exe = executable()
    if exe is None:
        raise FileNotFoundError("bwrap is not installed (apt package 'bubblewrap')")
    argv = [
        exe,
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        "taco-eval",
    ]
    if root:
        argv += ["--cap-drop", "ALL"]
        for cap in _WORKER_CAPS:
            argv += ["--cap-add", cap]
    else:
        argv += ["--unshare-user"]
        if _supports("--disable-userns"):
            argv += ["--disable-userns"]
    # System folders: bind real ones, recreate merged-/usr symlinks.
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for f in _ETC_FILES:
        argv += ["--ro-bind-try", f, f]
    perms = ["--perms", "0755"] if _supports("--perms") else []
    # The private /tmp comes before the library binds: a virtualenv or checkout that lives under
    # /tmp (CI clones often do) is bound on top of it instead of being hidden by it.
    if _supports("--size"):
        argv += ["--perms", "1777", "--size", str(TMPFS_BYTES)] if perms else ["--size", str(TMPFS_BYTES)]
    argv += ["--tmpfs", "/tmp"]
    made: set[str] = {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/tmp", "/etc"}
    binds = [p for p in library_paths if not p.startswith("/usr/")] + module_files()
    for path in binds:
        for parent in _ancestors(path):  # traversable by the unprivileged uid (/root is 0700)
            if parent not in made and not any(parent == p or parent.startswith(p + "/") for p in library_paths):
                argv += perms + ["--dir", parent]
                made.add(parent)
        argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    # Read-only everywhere but /tmp (no unbounded RAM-backed /dev/shm either).
    argv += [
        "--tmpfs",
        "/dev/shm",
        "--remount-ro",
        "/dev/shm",
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",
        "--clearenv",
    ]
    for key, value in _SANDBOX_ENV.items():
        argv += ["--setenv", key, value]
    path = [project_root()] + [p for p in sys.path if p and any(p == q or p.startswith(q + "/") for q in library_paths)]
    argv += ["--chdir", "/tmp", "--", sys.executable, "-B", "-c", f"import sys; sys.path[:0] = {path!r}; {code}"]
    return argv


class SandboxedProcess:
    """A bwrap-wrapped worker, with the slice of `multiprocess.Process` the pool uses."""

    def __init__(self, argv: list[str], pass_fds: tuple[int, ...]):
        self._popen = subprocess.Popen(argv, pass_fds=pass_fds, stdin=subprocess.DEVNULL, close_fds=True)
        self.pid = self._popen.pid
        self.sentinel = os.pidfd_open(self.pid)  # readable once bwrap (and so the sandbox) is gone

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()

    def kill(self) -> None:
        try:
            self._popen.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass

    def join(self, timeout: float | None = None) -> None:
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        if self.sentinel >= 0 and self._popen.poll() is not None:
            os.close(self.sentinel)
            self.sentinel = -1


def start_worker(conn_fd: int, cgroup: Any, library_paths: list[str]) -> SandboxedProcess:
    """`cgroup`: the slot's `cgroups.WorkerCgroup`, or None. The sandbox has no /sys: the worker
    gets its cgroups as inherited fds (its own cgroup.procs, and the `tests` directories)."""
    join_fd = -1
    tests: dict[str, int] = {}
    opened: list[int] = []
    try:
        if cgroup is not None:
            join_fd = os.open(cgroup.worker_procs_file, os.O_WRONLY | os.O_CLOEXEC)
            opened.append(join_fd)
            for kind, path in cgroup.tests.items():
                tests[kind] = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                opened.append(tests[kind])
        code = f"from tasks.execution.worker import sandboxed_main; sandboxed_main({conn_fd}, {join_fd}, {tests!r})"
        return SandboxedProcess(command(library_paths, code, os.geteuid() == 0), (conn_fd, *opened))
    finally:
        for fd in opened:
            os.close(fd)
