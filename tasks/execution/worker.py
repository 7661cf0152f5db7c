"""The execution worker: a spawned process that compiles programs and runs their tests.

It never sees expected outputs (a test child is a copy of its memory): it streams each test's
outcome to the dispatcher, which judges it. The worker does not wait for each verdict: it stops by
itself at a failure it can see (timeout, crash, limits), and between tests it checks for the
dispatcher's STOP (sent at a wrong answer), so a wrong answer costs at most one extra test.
"""

from __future__ import annotations

import marshal
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from tasks import defaults

# Native thread pools in a fork parent make fork unsafe and slow; and a program's numpy should
# not grab every core of a machine the pool is already spreading work over.
_SINGLE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
# The only variables programs see: the evaluator's environment may hold tokens and keys.
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONHASHSEED", "PYTHONIOENCODING") + _SINGLE_THREAD_ENV

MSG_READY = "ready"  # (READY, pid, scratch folder)
MSG_COMPILE_ERROR = "compile_error"  # (COMPILE_ERROR, job_id, message)
MSG_TEST = "test"  # (TEST, job_id, test_index, TestOutcome)
MSG_DONE = "done"  # (DONE, job_id)
MSG_STOP = "stop"  # dispatcher → worker: (STOP, job_id)


@dataclass(frozen=True)
class ProgramJob:
    """What a worker needs to run one program: no expected outputs."""

    job_id: int
    code: str
    fn_name: str | None  # None: stdin program
    inputs: list[Any]
    stop_on_failure: bool = True


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


def _stop_requested(conn: Any, job_id: int) -> bool:
    while conn.poll():
        msg = conn.recv()
        if msg == (MSG_STOP, job_id):
            return True
    return False


def _next_job(conn: Any) -> ProgramJob | None:
    while True:
        msg = conn.recv()
        if not (isinstance(msg, tuple) and msg and msg[0] == MSG_STOP):  # a STOP that came too late
            return msg


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
    conn.send((MSG_READY, os.getpid(), base))
    try:
        while True:
            job = _next_job(conn)
            if job is None:
                return
            code_obj, error = compile_program(job.code, settings.limits, address_space_base)
            if code_obj is None:
                conn.send((MSG_COMPILE_ERROR, job.job_id, error))
                continue
            for index, test_input in enumerate(job.inputs):
                if _stop_requested(conn, job.job_id):
                    break
                outcome = test_runner.run(code_obj, namespace, job.fn_name, test_input)
                conn.send((MSG_TEST, job.job_id, index, outcome))
                if job.stop_on_failure and outcome.status is not None:
                    break
            conn.send((MSG_DONE, job.job_id))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return
    finally:
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
