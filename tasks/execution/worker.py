"""The execution worker: a spawned process that compiles programs and runs their tests.

It never sees expected outputs (a test child is a copy of its memory): it streams each test's
outcome to the dispatcher, which judges it and answers whether to go on.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Native thread pools in a fork parent make fork unsafe and slow; and a program's numpy should
# not grab every core of a machine the pool is already spreading work over.
_SINGLE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")

MSG_COMPILED = "compiled"
MSG_COMPILE_ERROR = "compile_error"
MSG_TEST = "test"
MSG_DONE = "done"
MSG_READY = "ready"
REPLY_CONTINUE = "continue"
REPLY_STOP = "stop"


@dataclass(frozen=True)
class ProgramJob:
    """What a worker needs to run one program: no expected outputs."""

    job_id: int
    code: str
    fn_name: str | None  # None: stdin program
    inputs: list[Any]


@dataclass(frozen=True)
class WorkerSettings:
    index: int
    isolation: str
    limits: Any  # tasks.execution.limits.Limits


def _address_space_now() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def compile_program(code: str) -> tuple[Any, str | None]:
    try:
        return compile(code, "<program>", "exec", dont_inherit=True), None
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def worker_main(conn: Any, settings: WorkerSettings) -> None:
    for var in _SINGLE_THREAD_ENV:
        os.environ[var] = "1"
    from tasks.execution import header, runner, sandbox

    namespace = header.preload()
    runner.become_subreaper()
    confinement = sandbox.prepare(settings.isolation, settings.index)
    base = Path(tempfile.mkdtemp(prefix=f"taco-eval-w{settings.index}-"))
    os.chmod(base, 0o711)
    # Leave headroom for the child's own stdio buffers and the program's imports.
    address_space_base = _address_space_now() + 256 * 1024 * 1024
    counter = itertools.count()
    conn.send((MSG_READY, os.getpid()))
    try:
        while True:
            job: ProgramJob | None = conn.recv()
            if job is None:
                return
            code_obj, error = compile_program(job.code)
            if code_obj is None:
                conn.send((MSG_COMPILE_ERROR, job.job_id, error))
                continue
            conn.send((MSG_COMPILED, job.job_id))
            for index, test_input in enumerate(job.inputs):
                outcome = runner.run_test(
                    code_obj, namespace, job.fn_name, test_input, settings.limits,
                    base / f"t{next(counter)}", address_space_base, confinement.confine,
                    confinement.enforce_nproc,
                )
                conn.send((MSG_TEST, job.job_id, index, outcome))
                if conn.recv() == REPLY_STOP:
                    break
            conn.send((MSG_DONE, job.job_id))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return
    finally:
        shutil.rmtree(base, ignore_errors=True)
