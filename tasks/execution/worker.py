"""The execution worker: a spawned process that compiles programs and runs their tests.

It never sees expected outputs (a test child is a copy of its memory): it streams each test's
outcome to the dispatcher, which judges it. A program's test inputs are not in its job: once the
program compiles, the worker asks for the problem's test set the first time it meets that problem
and gets a sealed memfd (`tasks.execution.testdata`) that it keeps for the next programs of the
problem, so test data crosses to a worker once per problem and a compile error needs none.

With early stop the worker waits for the verdict of the first test before running the second
(most programs fail there: a speculative second test would double their cost); after that it does
not wait: it stops by itself at a failure it can see (timeout, crash, limits), and between tests it
checks for the dispatcher's STOP (sent at a wrong answer), so a later wrong answer costs at most
one extra test.
"""

from __future__ import annotations

import marshal
import os
import pickle
import socket
import tempfile
from dataclasses import dataclass
from typing import Any

from tasks import defaults
from tasks.execution import testdata

# Native thread pools in a fork parent make fork unsafe and slow; and a program's numpy should
# not grab every core of a machine the pool is already spreading work over.
_SINGLE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
# The only variables programs see: the evaluator's environment may hold tokens and keys.
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONHASHSEED", "PYTHONIOENCODING") + _SINGLE_THREAD_ENV

# worker → dispatcher
MSG_READY = "ready"  # (READY, pid, scratch folder, peak RSS in KiB)
MSG_COMPILE_ERROR = "compile_error"  # (COMPILE_ERROR, job_id, message)
MSG_NEED_TESTS = "need_tests"  # (NEED_TESTS, job_id): compiled; send the job's test set
MSG_TEST = "test"  # (TEST, job_id, test_index, TestOutcome)
MSG_DONE = "done"  # (DONE, job_id, the worker's peak RSS in KiB)
# dispatcher → worker (besides a `RunRequest`, and None: exit)
MSG_TESTS = "tests"  # (TESTS, tests_key), then the test set's memfd on the socket (SCM_RIGHTS)
MSG_RELEASE = "release"  # (RELEASE, tests_key): the problem is done, close its test set
MSG_GO = "go"  # (GO, job_id): the first test passed, run the others
MSG_STOP = "stop"  # (STOP, job_id)


@dataclass(frozen=True)
class ProgramJob:
    """One program to run, as callers give it to the pool. `tests_key` names the content of
    `inputs` (equal keys: equal inputs, e.g. the problem's content hash); without one the pool
    hashes the inputs itself."""

    job_id: int
    code: str
    fn_name: str | None  # None: stdin program
    inputs: list[Any]
    stop_on_failure: bool = True
    tests_key: str | None = None


@dataclass(frozen=True)
class RunRequest:
    """What crosses to the worker for one program: no test data, no expected outputs."""

    job_id: int
    code: str
    fn_name: str | None
    tests_key: str
    num_tests: int
    stop_on_failure: bool


def awaits_verdict(stop_on_failure: bool, index: int, status: str | None, num_tests: int) -> bool:
    """Whether the worker waits for the dispatcher's GO or STOP after this test (both sides ask)."""
    return stop_on_failure and index == 0 and status is None and num_tests > 1


def runs_another_test(stop_on_failure: bool, index: int, status: str | None, num_tests: int, go_on: bool) -> bool:
    """Whether the worker may still run a test of this job after test `index` (the dispatcher,
    knowing the verdict `go_on`, asks: if not, the job is over there and the next can be sent)."""
    if index == num_tests - 1 or (stop_on_failure and status is not None):
        return False
    return not awaits_verdict(stop_on_failure, index, status, num_tests) or go_on


@dataclass(frozen=True)
class WorkerSettings:
    index: int
    isolation: str
    limits: Any  # tasks.execution.limits.Limits
    cgroup: Any = None  # the slot's `tests` cgroups (`cgroups.WorkerCgroup.tests`), if any


def _address_space_now() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _compile(code: str) -> tuple[Any, str | None]:
    try:
        return compile(code, "<program>", "exec", dont_inherit=True), None
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def compile_program(code: str, limits: Any, address_space_base: int) -> tuple[Any, str | None]:
    """Compile once per program. A big program (some take seconds and gigabytes to compile) is
    compiled in a forked child under the test limits, so it costs the worker neither."""
    if len(code) <= defaults.INLINE_COMPILE_MAX_CHARS:
        return _compile(code)
    from tasks.execution import runner
    from tasks.execution.limits import apply_compile_rlimits

    out = os.memfd_create("compiled")
    try:
        pid = os.fork()
        if pid == 0:
            try:
                apply_compile_rlimits(limits, address_space_base)
                code_obj, error = _compile(code)
                data = b"C" + marshal.dumps(code_obj) if code_obj is not None else b"E" + error.encode()
                view = memoryview(data)
                while view:
                    view = view[os.write(out, view) :]
            finally:
                os._exit(0)
        status, elapsed = runner.wait_deadline(pid, limits.timeout_s)
        if status is None:
            runner.kill_group(pid)
            os.waitpid(pid, 0)
            return None, f"compiling took longer than {limits.timeout_s:g} s"
        data = os.pread(out, os.fstat(out).st_size, 0)
    finally:
        os.close(out)
    if data[:1] == b"E":
        return None, data[1:].decode("utf-8", "replace")
    try:
        if data[:1] == b"C":
            return marshal.loads(data[1:]), None
    except (ValueError, EOFError, TypeError):
        pass
    return None, f"compiling failed: {runner.describe(status)}"


class _Shutdown(Exception):
    pass


class _Inbox:
    """The worker's end of the socket: keeps the test-set cache up to date with whatever the
    dispatcher sends, and answers the questions the run loop asks."""

    def __init__(self, conn: Any, cache: testdata.TestSetCache):
        self.conn = conn
        self.cache = cache

    def send(self, msg: tuple[Any, ...]) -> None:
        # The standard pickler: multiprocess's own (dill) takes ~50 us a message in pure Python.
        self.conn.send_bytes(pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))

    def _receive(self) -> Any:
        """One message, after applying what it says to the test-set cache."""
        msg = pickle.loads(self.conn.recv_bytes())
        if msg is None:
            raise _Shutdown
        if isinstance(msg, tuple) and len(msg) == 2 and msg[0] == MSG_RELEASE:
            self.cache.release(msg[1])
        elif isinstance(msg, tuple) and len(msg) == 2 and msg[0] == MSG_TESTS:
            # The descriptor follows the message on the same socket.
            with socket.socket(fileno=os.dup(self.conn.fileno())) as sock:
                _, fds, _, _ = socket.recv_fds(sock, 1, 1)
            if len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                raise EOFError("a test set came without its descriptor")
            os.set_inheritable(fds[0], False)
            self.cache.put(msg[1], fds[0])
        return msg

    def request(self) -> RunRequest:
        while True:
            msg = self._receive()
            if isinstance(msg, RunRequest):
                return msg  # anything else is a GO or STOP that came too late, or cache news

    def verdict_says_go(self, job_id: int) -> bool:
        while True:
            msg = self._receive()
            if msg == (MSG_GO, job_id):
                return True
            if msg == (MSG_STOP, job_id):
                return False

    def stop_requested(self, job_id: int) -> bool:
        while self.conn.poll():
            if self._receive() == (MSG_STOP, job_id):
                return True
        return False

    def test_set(self, request: RunRequest) -> testdata.TestSet:
        """The request's test set: from the cache, or asked for (once per problem and worker)."""
        found = self.cache.get(request.tests_key)
        if found is None:
            self.send((MSG_NEED_TESTS, request.job_id))
            while self._receive() != (MSG_TESTS, request.tests_key):
                pass
            found = self.cache.get(request.tests_key)
        if found is None or found.count != request.num_tests or found.call_based != (request.fn_name is not None):
            raise testdata.TestDataError(f"test set {request.tests_key} does not match job {request.job_id}")
        return found


class _PeakRss:
    """The worker's own peak RSS in KiB (VmHWM). Not ru_maxrss: after a spawn (fork + exec) that
    also holds what the dispatcher had mapped before the exec."""

    def __init__(self) -> None:
        try:
            self._fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = -1

    def kb(self) -> int:
        if self._fd < 0:
            return 0
        status = os.pread(self._fd, 4096, 0)
        at = status.find(b"VmHWM:")
        return int(status[at + 6 : status.index(b"kB", at)]) if at >= 0 else 0


def _scrub_environment() -> None:
    for var in _SINGLE_THREAD_ENV:
        os.environ[var] = "1"
    for var in [v for v in os.environ if v not in _KEPT_ENV]:
        del os.environ[var]


def _open_std_fds() -> None:
    # Test children's stdio objects are built on fds 0-2 here before each fork (then dup2'd over):
    # a worker started without one of them gets /dev/null there.
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free fd: this one


def worker_main(conn: Any, settings: WorkerSettings) -> None:
    tmp = tempfile.gettempdir()  # before the scrub drops TMPDIR
    _scrub_environment()
    _open_std_fds()
    from tasks.execution import header, runner, sandbox, scratch

    namespace = header.preload()
    runner.become_subreaper()
    base = tempfile.mkdtemp(prefix=f"taco-eval-w{settings.index}-", dir=tmp)
    os.chmod(base, 0o711)
    try:
        confinement = sandbox.prepare(settings.isolation, settings.index, base, settings.cgroup)
    except BaseException:
        scratch.remove_tree(base)
        raise
    # Leave headroom for the child's own stdio buffers and the program's imports.
    address_space_base = _address_space_now() + 256 * 1024 * 1024
    test_runner = runner.TestRunner(base, settings.limits, address_space_base, confinement)
    cache = testdata.TestSetCache(defaults.WORKER_TEST_SETS)
    inbox = _Inbox(conn, cache)
    peak_rss = _PeakRss()
    inbox.send((MSG_READY, os.getpid(), base, peak_rss.kb()))
    try:
        while True:
            request = inbox.request()
            code_obj, error = compile_program(request.code, settings.limits, address_space_base)
            if code_obj is None:
                inbox.send((MSG_COMPILE_ERROR, request.job_id, error))
                continue
            tests = inbox.test_set(request)
            for index in range(tests.count):
                if index and inbox.stop_requested(request.job_id):
                    break
                outcome = test_runner.run(code_obj, namespace, request.fn_name, tests.input(index))
                inbox.send((MSG_TEST, request.job_id, index, outcome))
                if request.stop_on_failure and outcome.status is not None:
                    break
                if awaits_verdict(request.stop_on_failure, index, outcome.status, tests.count):
                    if not inbox.verdict_says_go(request.job_id):
                        break
            inbox.send((MSG_DONE, request.job_id, peak_rss.kb()))
    except (_Shutdown, EOFError, BrokenPipeError, KeyboardInterrupt):
        return
    finally:
        cache.close()
        test_runner.close()
        scratch.remove_tree(base)


def sandboxed_main(conn_fd: int, join_fd: int, tests: dict[str, int]) -> None:
    """The main of a bwrap worker (started by `bwrap.start_worker`): join the slot's cgroup, then
    serve as an ordinary worker."""
    import dataclasses

    from multiprocess.connection import Connection

    if join_fd >= 0:
        try:
            os.write(join_fd, b"0")  # "0": the writing process
        except OSError:
            pass
        os.close(join_fd)
    conn = Connection(conn_fd)
    settings: Any = conn.recv()
    worker_main(conn, dataclasses.replace(settings, cgroup=tests or None))
