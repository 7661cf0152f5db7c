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
import gc
import json
import os
import select
import signal
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks import defaults, statuses
from tasks.execution import child, scratch
from tasks.execution.limits import Limits, apply_rlimits

PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
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
    exit_code: int | None = None  # None: killed by a signal or at the deadline


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


def wait_deadline(pid: int, timeout_s: float) -> tuple[int | None, float]:
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


def kill_group(pid: int) -> None:
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
            kill_group(pid)
            killed += 1
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return killed


_REPORT_LINE_MAX = 256


def _read_report(fd: int) -> tuple[dict[str, Any] | None, int]:
    """The child's report line (validated) and where the payload after it starts."""
    head = os.pread(fd, _REPORT_LINE_MAX, 0)
    line, newline, _ = head.partition(b"\n")
    if not newline:
        return None, 0
    try:
        report = json.loads(line)
    except ValueError:
        return None, 0
    if (
        type(report) is not dict
        or report.get("end") not in child.ENDS
        or type(report.get("code")) is not int
        or set(report) != {"end", "code"}
    ):
        return None, 0
    return report, len(line) + 1


_END_STATUS = {
    child.END_EXCEPTION: statuses.RUNTIME_ERROR,
    child.END_MEMORY: statuses.MEMORY_LIMIT,
    child.END_NO_ENTRY_POINT: statuses.COMPILE_ERROR,
    child.END_NOT_PLAIN_DATA: statuses.WRONG_ANSWER,
}


def _classify(status: int, report: dict[str, Any] | None) -> str | None:
    """The test's status from how the child ended; None: ended normally, output to be judged."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXFSZ:
            return statuses.OUTPUT_LIMIT
        if sig == signal.SIGXCPU:
            return statuses.TIMEOUT
        return statuses.RUNTIME_ERROR
    code = os.WEXITSTATUS(status)
    # A report whose exit status disagrees was written by the program, not by the child's code,
    # which exits right after writing it: trust the status alone then.
    if report is not None and report["code"] & 0xFF == code and report["end"] in _END_STATUS:
        return _END_STATUS[report["end"]]
    return None if code == 0 else statuses.RUNTIME_ERROR


def describe(status: int | None) -> str:
    if status is None:
        return "killed at the wall-clock deadline"
    if os.WIFSIGNALED(status):
        try:
            return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        except ValueError:  # a real-time signal has no name
            return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"


class TestRunner:
    """Runs tests for one worker: each test in a fresh (or pristine) work dir, memfds reused."""

    def __init__(self, base_dir: str, limits: Limits, address_space_base: int, confinement: Any):
        self.base = Path(base_dir)
        self.limits = limits
        self.address_space_base = address_space_base
        self.confinement = confinement
        self.fds = [os.memfd_create(name) for name in ("stdin", "stdout", "stderr", "report")]
        self.stdio = child.Stdio.of_this_interpreter(max(os.fstat(self.fds[0]).st_blksize, 1))
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

    def _pristine(self, path: Path) -> bool:
        """Whether the work dir is exactly as made: empty, same owner and mode, no xattrs."""
        try:
            st = os.lstat(path)
            uid = getattr(self.confinement, "uid", None)
            return (
                stat.S_ISDIR(st.st_mode)
                and stat.S_IMODE(st.st_mode) == 0o700
                and st.st_uid == (os.geteuid() if uid is None else uid)
                and not os.listdir(path)
                and not os.listxattr(path, follow_symlinks=False)
            )
        except OSError:
            return False

    def _fresh_workdir(self) -> None:
        """A new work dir for the next test unless the last one is pristine (mkdir + rmdir cost
        ~0.1-0.3 ms on a journaling file system, a tenth of a test)."""
        if self._pristine(self.workdir):
            return
        # What cannot be removed now goes with the worker's scratch folder when the worker ends.
        scratch.remove_tree(str(self.workdir))
        self.workdir = self._new_workdir()

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def _reset_fds(self, test_input: Any) -> None:
        """Empty the output fds; make stdin hold `test_input`: text, or a stored input
        (`testdata.StoredInput`) copied from its test set inside the kernel."""
        stdin_fd = self.fds[0]
        for fd in self.fds[1:]:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
        if test_input is None or isinstance(test_input, str):
            os.ftruncate(stdin_fd, 0)
            os.lseek(stdin_fd, 0, os.SEEK_SET)
            if test_input:
                view = memoryview(test_input.encode("utf-8", "surrogateescape"))
                while view:
                    view = view[os.write(stdin_fd, view) :]
                os.lseek(stdin_fd, 0, os.SEEK_SET)
        else:
            test_input.copy_to(stdin_fd)

    def _start_child(self, workdir: Path, code_obj: Any, stage: child.Stage, fn_name: str | None, args: Any) -> None:
        """In the forked child: confine, then run the program; never returns."""
        worker_pid = os.getppid()
        try:
            os.setsid()
            for target, fd in enumerate(self.fds):
                os.dup2(fd, target)
            _close_fds_except(child.REPORT_FD + 1, self.confinement.keep_fds)
            os.chdir(workdir)
            os.environ.update({"HOME": str(workdir), "TMPDIR": str(workdir)})
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            apply_rlimits(self.limits, self.address_space_base, self.confinement.enforce_nproc)
            self.confinement.confine()
            # Die with the worker (after confine: a uid change clears the death signal).
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != worker_pid:
                os._exit(1)
        except BaseException:
            os._exit(1)
        if fn_name is None:
            child.run_stdin_program(code_obj, stage, self.stdio)
        child.run_call_program(code_obj, stage, self.stdio, fn_name, args or [])

    def run(self, code_obj: Any, namespace: dict[str, Any], fn_name: str | None, test_input: Any) -> TestOutcome:
        """Fork, confine and run one test. `test_input` is the stdin (text or a stored input), or
        the argument list."""
        limits = self.limits
        self._reset_fds(test_input if fn_name is None else None)
        workdir = self.workdir
        stage = child.stage(namespace, self.stdio, fn_name is not None, str(workdir))
        # The child's collection at shutdown must walk only the program's objects: walking the
        # worker's would copy every page of its heap (~9 ms a test). Freezing is O(1).
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the test child
            self._start_child(workdir, code_obj, stage, fn_name, test_input)
            os._exit(1)  # unreachable: the child always exits
        gc.unfreeze()
        del stage
        status, elapsed = wait_deadline(pid, limits.timeout_s)
        kill_group(pid)
        if status is None:
            os.waitpid(pid, 0)
        out_of_memory = self.confinement.end_test()
        reap_strays()
        self._fresh_workdir()
        _, out_fd, err_fd, report_fd = self.fds
        report, payload_at = _read_report(report_fd)
        verdict = statuses.TIMEOUT if status is None else _classify(status, report)
        if out_of_memory and verdict == statuses.RUNTIME_ERROR:  # killed by its memory cgroup
            verdict = statuses.MEMORY_LIMIT
        stdout = _read_all(out_fd, limits.output_limit_bytes)
        stderr_tail = _read_tail(err_fd, defaults.STDERR_TAIL_BYTES).decode("utf-8", "replace")
        if verdict is not None and verdict != statuses.WRONG_ANSWER:
            stderr_tail = f"[{describe(status)}] {stderr_tail}"
        returned = None
        if fn_name is not None and verdict is None:
            if report is not None and report["end"] == child.END_RETURNED:
                returned = os.pread(report_fd, limits.output_limit_bytes, payload_at).decode("utf-8", "replace")
            else:  # exited 0 without returning (os._exit(0) or sys.exit() in the function)
                verdict = statuses.RUNTIME_ERROR
                stderr_tail = f"[exited before returning a value] {stderr_tail}"
        exit_code = None if status is None or os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        return TestOutcome(verdict, stdout, returned, stderr_tail, elapsed * 1000.0, exit_code)
