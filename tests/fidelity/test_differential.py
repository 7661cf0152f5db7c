"""Differential test: every probe through real `python3 program.py < input` and through the engine,
at every isolation level; stdout bytes and exit class must be identical.

The ground truth is computed here, by the interpreter the engine runs on, with a regular file as
stdin and as stdout, in an empty working directory, with the file named program.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.execution import sandbox
from tasks.execution.limits import Limits
from tasks.execution.pool import ExecutionPool
from tasks.execution.worker import ProgramJob
from tests.fidelity.probes import PROBES

TIMEOUT_S = 10.0


def exit_class(code: int | None) -> str:
    return "ok" if code == 0 else "error"


def real_python(code: str, stdin: str) -> tuple[bytes, str]:
    """What `python3 program.py < input > output` prints, and its exit class."""
    with tempfile.TemporaryDirectory(prefix="taco-eval-probe-") as cwd:
        Path(cwd, "program.py").write_text(code)
        with tempfile.TemporaryFile(dir=cwd) as fin, tempfile.TemporaryFile(dir=cwd) as fout:
            fin.write(stdin.encode("utf-8", "surrogateescape"))
            fin.seek(0)
            env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONHASHSEED")}
            proc = subprocess.run(
                [sys.executable, "program.py"],
                stdin=fin,
                stdout=fout,
                stderr=subprocess.DEVNULL,
                cwd=cwd,
                env=env,
                timeout=TIMEOUT_S,
            )
            fout.seek(0)
            return fout.read(), exit_class(proc.returncode)


_pools: dict[str, ExecutionPool] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_pools():
    yield
    for pool in _pools.values():
        pool.close()
    _pools.clear()


def engine(level: str, programs: list[tuple[str, str]]) -> list[tuple[bytes, str]]:
    """Each (code, stdin) through the execution engine at `level`: stdout bytes and exit class."""
    if level not in _pools:
        _pools[level] = ExecutionPool(2, Limits(timeout_s=TIMEOUT_S), level).__enter__()
    jobs = [ProgramJob(job_id=i, code=code, fn_name=None, inputs=[stdin]) for i, (code, stdin) in enumerate(programs)]
    seen: dict[int, tuple[bytes, str]] = {}

    def record(job, index, outcome):
        seen[job.job_id] = (
            outcome.stdout,
            exit_class(outcome.exit_code) if outcome.status is None or outcome.exit_code is not None else "error",
        )
        return None, True

    for run in _pools[level].run(jobs, record):
        assert run.compile_error is None and run.crashed is None, (run.compile_error, run.crashed)
    return [seen[i] for i in range(len(programs))]


def available(level: str) -> str:
    why = sandbox.unavailable_reasons().get(level)
    if why is not None:
        pytest.skip(f"isolation level {level} is not available here: {why}")
    return level


_truth: dict[str, tuple[bytes, str]] = {}
_engine: dict[str, dict[str, tuple[bytes, str]]] = {}


def _probe_results(level: str) -> dict[str, tuple[bytes, str]]:
    if level not in _engine:
        outcomes = engine(level, [(code, stdin) for _, code, stdin in PROBES])
        _engine[level] = {name: out for (name, _, _), out in zip(PROBES, outcomes)}
    return _engine[level]


@pytest.mark.parametrize("level", sandbox.LEVELS)
@pytest.mark.parametrize("name, code, stdin", PROBES, ids=[p[0] for p in PROBES])
def test_probe_matches_real_python(level, name, code, stdin):
    available(level)
    if name not in _truth:
        _truth[name] = real_python(code, stdin)
    assert _probe_results(level)[name] == _truth[name]


# --- hypothesis: combinations of the idioms ---------------------------------------------------

EMITTERS = [
    "print({v!r})",
    "sys.stdout.write({v!r} + '\\n')",
    "print({v!r}, flush=True)",
    "print({v!r}, file=sys.stderr)",
    "atexit.register(print, {v!r})",
    # Below the text layer: their order against buffered text depends on when it is flushed, and
    # in a thread that races with the interpreter's flush after the main module (in real Python
    # too), so thread-wrapped programs do not use them.
    "sys.stdout.buffer.write(({v!r} + '\\n').encode())",
    "os.write(1, ({v!r} + '\\n').encode())",
]
THREAD_SAFE_EMITTERS = 5
ENDINGS = [
    "",
    "sys.exit(0)",
    "sys.exit(2)",
    "os._exit(0)",
    "raise ValueError('x')",
    "sys.stdout.flush()\nos._exit(0)",
    "exit()",
]
WRAPPERS = ["plain", "main_guard", "thread"]


def _indent(lines: list[str]) -> str:
    return "".join(f"    {line}\n" for text in lines for line in text.split("\n"))


def build_program(emits: list[tuple[int, str]], ending: str, wrapper: str) -> str:
    if wrapper == "thread":  # os._exit in a thread races with that flush as well
        emits = [(i % THREAD_SAFE_EMITTERS, v) for i, v in emits]
        ending = "" if "os._exit" in ending else ending
    body = [EMITTERS[i].format(v=v) for i, v in emits] + ([ending] if ending else [])
    head = "import atexit, os, sys, threading\n"
    if wrapper == "plain":
        return head + "".join(f"{line}\n" for text in body for line in text.split("\n"))
    if wrapper == "main_guard":
        return head + "def main():\n" + _indent(body or ["pass"]) + "if __name__ == '__main__':\n    main()\n"
    return head + "def main():\n" + _indent(body or ["pass"]) + "threading.Thread(target=main).start()\n"


programs = st.builds(
    build_program,
    st.lists(st.tuples(st.integers(0, len(EMITTERS) - 1), st.text("abc xyz", min_size=1, max_size=6)), max_size=5),
    st.sampled_from(ENDINGS),
    st.sampled_from(WRAPPERS),
)


@pytest.mark.parametrize("level", sandbox.LEVELS)
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(programs, min_size=8, max_size=8))
def test_idiom_combinations_match_real_python(level, batch):
    available(level)
    truth = [real_python(code, "") for code in batch]
    assert engine(level, [(code, "") for code in batch]) == truth
