"""Run one test of a compiled program in a forked, confined child and report how it ended.

The worker that calls this is a long-lived, single-threaded process with TACO's header already
imported, so a fork costs a few milliseconds. The child gets its input from a memfd (no pipe to
deadlock on, however large), writes stdout/stderr to memfds capped by RLIMIT_FSIZE (an endless
printer dies of SIGXFSZ at the cap), lives in its own session and temp dir, and is killed with its
whole process group at the wall-clock deadline. Descendants that escaped the group (setsid,
double fork) are reparented to the worker, a child subreaper, and killed before the next test.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taco_eval import statuses
from tasks.execution import child
from tasks.execution.limits import Limits, apply_rlimits

PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
_STDERR_TAIL = 2048
_FD_LIMIT = 1 << 16
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class TestOutcome:
    """How one test ended. `status` is None when the program exited normally: then its output
    (stdout, or the JSON return value for call-based programs) is for the judge to compare."""

    status: str | None
    stdout: bytes = b""
    returned: str | None = None
    stderr_tail: str = ""
    elapsed_ms: float = 0.0


def become_subreaper() -> bool:
    return _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _close_fds_except(first: int, keep: tuple[int, ...]) -> None:
    start = first
    for fd in sorted(k for k in keep if k >= first):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, _FD_LIMIT)


def _read_all(fd: int, limit: int) -> bytes:
    size = os.lseek(fd, 0, os.SEEK_END)
    return os.pread(fd, min(size, limit), 0) if size else b""


def _read_tail(fd: int, limit: int) -> bytes:
    size = os.lseek(fd, 0, os.SEEK_END)
    start = max(0, size - limit)
    return os.pread(fd, size - start, start) if size else b""


def _wait_deadline(pid: int, timeout_s: float) -> tuple[int | None, float]:
    """Wait for `pid` until the deadline; return (wait status or None on timeout, elapsed s)."""
    start = time.perf_counter()
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(max(1, int(timeout_s * 1000))):
                return None, time.perf_counter() - start
        finally:
            os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        return status, time.perf_counter() - start
    while True:  # kernels without pidfd (< 5.3)
        done, status = os.waitpid(pid, os.WNOHANG)
        elapsed = time.perf_counter() - start
        if done:
            return status, elapsed
        if elapsed >= timeout_s:
            return None, elapsed
        time.sleep(0.0005)


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def reap_strays(limit_s: float = 5.0) -> int:
    """Kill and reap every remaining child of this (subreaper) process; return how many.

    Rounds go on until one finds no child, however deep the chain: a process that forks and
    exits before its kill lands hands its child to us, and the next round kills that one (a
    fork with SIGKILL pending fails, so each round gains on the chain). Bounded in time only.
    Where the test's cgroup was killed as a whole first, one round reaps the corpses."""
    path = f"/proc/self/task/{os.getpid()}/children"
    killed = 0
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            pids = [int(p) for p in Path(path).read_text().split()]
        except OSError:
            pids = []
        while True:  # zombies are not listed as children once waited; collect any left
            try:
                done, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                done = 0
            if not done:
                break
        if not pids:
            break
        for pid in pids:
            _kill_group(pid)
            killed += 1
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return killed


def _classify(status: int) -> str | None:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXFSZ:
            return statuses.OUTPUT_LIMIT
        if sig == signal.SIGXCPU:
            return statuses.TIMEOUT
        return statuses.RUNTIME_ERROR
    code = os.WEXITSTATUS(status)
    if code == child.EXIT_OK:
        return None
    if code == child.EXIT_MEMORY:
        return statuses.MEMORY_LIMIT
    if code == child.EXIT_NO_ENTRY_POINT:
        return statuses.COMPILE_ERROR
    if code == child.EXIT_NOT_PLAIN_DATA:
        return statuses.WRONG_ANSWER
    return statuses.RUNTIME_ERROR


def _describe(status: int | None) -> str:
    if status is None:
        return "killed at the wall-clock deadline"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.WEXITSTATUS(status)}"


class TestRunner:
    """Runs tests for one worker, reusing its memfds and (while it stays empty) its work dir."""

    def __init__(self, base_dir: str, limits: Limits, address_space_base: int, confinement: Any):
        self.base = Path(base_dir)
        self.limits = limits
        self.address_space_base = address_space_base
        self.confinement = confinement
        self.fds = [os.memfd_create(name) for name in ("stdin", "stdout", "stderr", "result")]
        self._serial = 0
        self.workdir = self._new_workdir()

    def _new_workdir(self) -> Path:
        self._serial += 1
        path = self.base / f"t{self._serial}"
        path.mkdir(mode=0o700)
        uid = getattr(self.confinement, "uid", None)
        if uid is not None:  # test children run as this unprivileged uid: the dir is theirs alone
            os.chown(path, uid, uid)
        return path

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def _reset_fds(self, test_input: str | None) -> None:
        for fd in self.fds:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
        if test_input:
            stdin_fd = self.fds[0]
            view = memoryview(test_input.encode("utf-8", "surrogateescape"))
            while view:
                view = view[os.write(stdin_fd, view):]
            os.lseek(stdin_fd, 0, os.SEEK_SET)

    def run(self, code_obj: Any, namespace: dict[str, Any], fn_name: str | None, test_input: Any) -> TestOutcome:
        """Fork, confine and run one test. `test_input` is stdin text, or the argument list."""
        limits = self.limits
        self._reset_fds(test_input if fn_name is None else None)
        worker_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the test child
            try:
                os.setsid()
                for target, fd in enumerate(self.fds):
                    os.dup2(fd, target)
                _close_fds_except(child.RESULT_FD + 1, self.confinement.keep_fds)
                os.chdir(self.workdir)
                os.environ.update({"HOME": str(self.workdir), "TMPDIR": str(self.workdir)})
                signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                apply_rlimits(limits, self.address_space_base, self.confinement.enforce_nproc)
                self.confinement.confine()
                # Die with the worker (after confine: a uid change clears the death signal).
                _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                if os.getppid() != worker_pid:
                    os._exit(child.EXIT_SETUP_FAILED)
            except BaseException:
                os._exit(child.EXIT_SETUP_FAILED)
            child.run_program(code_obj, dict(namespace), fn_name, test_input if fn_name is not None else None)
            os._exit(child.EXIT_SETUP_FAILED)  # unreachable: run_program always exits
        status, elapsed = _wait_deadline(pid, limits.timeout_s)
        _kill_group(pid)
        if status is None:
            os.waitpid(pid, 0)
        out_of_memory = self.confinement.end_test()
        reap_strays()
        try:
            if os.listdir(self.workdir):  # the program left files: the next one gets a clean dir
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = self._new_workdir()
        except OSError:  # deleted or made unreadable by the program
            self.workdir = self._new_workdir()
        _, out_fd, err_fd, res_fd = self.fds
        verdict = statuses.TIMEOUT if status is None else _classify(status)
        if out_of_memory and verdict == statuses.RUNTIME_ERROR:  # killed by its memory cgroup
            verdict = statuses.MEMORY_LIMIT
        stdout = _read_all(out_fd, limits.output_limit_bytes)
        stderr_tail = _read_tail(err_fd, _STDERR_TAIL).decode("utf-8", "replace")
        if verdict is not None and verdict != statuses.WRONG_ANSWER:
            stderr_tail = f"[{_describe(status)}] {stderr_tail}"
        returned = None
        if fn_name is not None and verdict is None:
            returned = _read_all(res_fd, limits.output_limit_bytes).decode("utf-8", "replace")
            if not returned:  # exited 0 without returning (os._exit(0) or sys.exit() in the function)
                verdict = statuses.RUNTIME_ERROR
                stderr_tail = f"[exited before returning a value] {stderr_tail}"
        return TestOutcome(verdict, stdout, returned, stderr_tail, elapsed * 1000.0)
