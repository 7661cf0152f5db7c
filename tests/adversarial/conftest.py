"""The attack matrix: hostile programs run under every isolation level available here.

Every attack test takes the `level` fixture (one run per level; levels this machine cannot offer
are skipped with the reason) and the `attack` harness, which runs a program on a pool shared by
the whole session and checks, besides the verdict the test asserts:

- the evaluator survived (a trivial program still passes on the same pool afterwards);
- the run stayed within its time budget;
- no process of the program is left (every attack program names its processes with a unique
  token through prctl(PR_SET_NAME); none may remain once its verdict is in);
- what happened to decoy files placed outside the sandbox (the test says what it expects).

Set TACO_EVAL_ATTACK_MATRIX=path.json to write the attack × level table the tests measured;
`python tests/adversarial/matrix.py path.json` prints it as the README's Markdown table.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tasks.types import MODE_STDIN, Problem
from tasks.judging import rules as judging
from tasks.judging.evaluate import _verdict_from_run
from tasks.execution import sandbox
from tasks.execution.limits import Limits
from tasks.execution.pool import ExecutionPool
from tasks.execution.runner import TestOutcome
from tasks.execution.worker import ProgramJob

FAST_TIMEOUT_S = 1.0
SLOW_TIMEOUT_S = 4.0
# A secret in the evaluator's environment, set before any worker starts.
ENV_SECRET = "TACO_EVAL_TEST_SECRET"
os.environ.setdefault(ENV_SECRET, "env-" + secrets.token_hex(8))

_MATRIX: dict[tuple[str, str], str] = {}


def _reasons() -> dict[str, str]:
    return sandbox.unavailable_reasons()


@pytest.fixture(params=sandbox.LEVELS)
def level(request) -> str:
    why = _reasons().get(request.param)
    if why is not None:
        pytest.skip(f"isolation level {request.param} is not available here: {why}")
    return request.param


def stdin_problem(inputs: list[str], outputs: list[str]) -> Problem:
    return Problem(0, "attack", "", "", None, MODE_STDIN, list(inputs), list(outputs))


@dataclass
class AttackResult:
    status: str
    detail: str
    outcomes: list[TestOutcome]
    elapsed_s: float
    survivors: list[int]
    worker_restarts: int
    decoys_intact: bool
    decoys_changed: list[str] = field(default_factory=list)

    @property
    def stdout(self) -> str:
        return "".join(o.stdout.decode("utf-8", "replace") for o in self.outcomes)

    @property
    def stderr(self) -> str:
        return "".join(o.stderr_tail for o in self.outcomes)


class Decoys:
    """Files outside any sandbox that attacks try to read, change or delete."""

    def __init__(self, root: Path):
        self.root = root
        self.secret = "TOPSECRET-" + secrets.token_hex(8)
        self.answer = "ANSWER-" + secrets.token_hex(8)
        (root / "run").mkdir()
        (root / "home").mkdir()
        self.secret_file = root / "home" / "secret_token.txt"
        self.secret_file.write_text(self.secret + "\n")
        # A dataset laid out like TACO: the expected output of the attack problem is inside.
        self.dataset = root / "dataset.jsonl"
        row = {"question": "q", "input_output": json.dumps({"inputs": ["1\n"], "outputs": [self.answer + "\n"]})}
        self.dataset.write_text(json.dumps(row) + "\n")
        self.results = root / "run" / "results.parquet"
        self.results.write_bytes(b"PAR1" + os.urandom(64) + b"PAR1")
        self.evaluator = root / "run" / "manifest.json"
        self.evaluator.write_text('{"run": "decoy"}\n')
        self._snapshot = self._state()

    def _state(self) -> dict[str, str]:
        state = {}
        for path in sorted(self.root.rglob("*")):
            rel = str(path.relative_to(self.root))
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        return state

    def changed(self) -> list[str]:
        now = self._state()
        return sorted(k for k in set(now) | set(self._snapshot) if now.get(k) != self._snapshot.get(k))


def _comm_token() -> str:
    return "tacoatk" + secrets.token_hex(4)  # 15 chars: the kernel's limit for a task name


def _prelude(token: str) -> str:
    return f"import ctypes as _c\n_c.CDLL(None).prctl(15, b'{token}', 0, 0, 0)\ndel _c\n"


def processes_named(token: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm") as fh:
                if fh.read().strip() != token:
                    continue
            with open(f"/proc/{entry.name}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    continue
        except OSError:
            continue
        found.append(int(entry.name))
    return found


class Harness:
    def __init__(self) -> None:
        self._pools: dict[tuple[str, float, int], ExecutionPool] = {}

    def pool(
        self, level: str, timeout_s: float = FAST_TIMEOUT_S, memory_limit_mb: int = Limits.memory_limit_mb
    ) -> ExecutionPool:
        key = (level, timeout_s, memory_limit_mb)
        if key not in self._pools:
            pool = ExecutionPool(1, Limits(timeout_s=timeout_s, memory_limit_mb=memory_limit_mb), level)
            pool.__enter__()
            self._pools[key] = pool
        return self._pools[key]

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def run(
        self,
        level: str,
        code: str,
        problem: Problem,
        decoys: Decoys | None = None,
        timeout_s: float = FAST_TIMEOUT_S,
        extra_budget_s: float = 0.0,
        decoys_may_change: bool = False,
        memory_limit_mb: int = Limits.memory_limit_mb,
    ) -> AttackResult:
        pool = self.pool(level, timeout_s, memory_limit_mb)
        token = _comm_token()
        job = ProgramJob(0, _prelude(token) + code, problem.fn_name, problem.inputs, stop_on_failure=True)
        outcomes: list[TestOutcome] = []

        def judge(job: ProgramJob, index: int, outcome: TestOutcome) -> tuple[Any, bool]:
            outcomes.append(outcome)
            verdict = judging.judge_test(problem, index, outcome)
            return verdict, verdict.passed

        restarts = pool.worker_restarts
        start = time.perf_counter()
        (run,) = list(pool.run([job], judge))
        elapsed = time.perf_counter() - start
        verdict = _verdict_from_run(run, problem.num_tests)
        survivors = processes_named(token)
        for pid in survivors:  # never leave them running, whatever the assertion says next
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        changed = decoys.changed() if decoys is not None else []
        result = AttackResult(
            verdict["status"],
            verdict["detail"],
            outcomes,
            elapsed,
            survivors,
            pool.worker_restarts - restarts,
            not changed,
            changed,
        )
        # The evaluator must survive every attack: the same pool still judges a good program.
        sane = stdin_problem(["7\n"], ["7\n"])
        ok_outcomes: list[TestOutcome] = []
        (check,) = list(
            pool.run(
                [ProgramJob(1, "print(input())", None, sane.inputs)],
                lambda j, i, o: (ok_outcomes.append(o) or judging.judge_test(sane, i, o), True),
            )
        )
        assert _verdict_from_run(check, 1)["status"] == "passed", f"the pool no longer runs programs: {check}"
        budget = timeout_s * max(1, problem.num_tests) * 2 + 6.0 + extra_budget_s
        assert elapsed < budget, f"attack took {elapsed:.1f} s, budget {budget:.1f} s"
        assert not survivors, f"processes of the program survived: {survivors}"
        assert decoys_may_change or not changed, f"files outside the sandbox changed: {changed}"
        return result


@pytest.fixture(scope="session")
def _harness():
    harness = Harness()
    yield harness
    harness.close()


@pytest.fixture
def decoys(tmp_path) -> Decoys:
    return Decoys(tmp_path)


class BoundHarness:
    """The session's harness, checking this test's decoys after every run."""

    def __init__(self, harness: Harness, decoys: Decoys):
        self._harness, self._decoys = harness, decoys

    def pool(
        self, level: str, timeout_s: float = FAST_TIMEOUT_S, memory_limit_mb: int = Limits.memory_limit_mb
    ) -> ExecutionPool:
        return self._harness.pool(level, timeout_s, memory_limit_mb)

    def run(self, level: str, code: str, problem: Problem, **kw: Any) -> AttackResult:
        kw.setdefault("decoys", self._decoys)
        return self._harness.run(level, code, problem, **kw)


@pytest.fixture
def attack(_harness, decoys) -> BoundHarness:
    return BoundHarness(_harness, decoys)


@pytest.fixture
def record(request):
    """record(level, cell): one cell of the attack × level table, the attack named by the test."""

    def _record(level: str, cell: str, attack_name: str | None = None) -> None:
        name = attack_name or request.node.module.ATTACK
        _MATRIX[(name, level)] = cell

    return _record


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("TACO_EVAL_ATTACK_MATRIX")
    if out and _MATRIX:
        rows = [{"attack": a, "level": lv, "result": cell} for (a, lv), cell in sorted(_MATRIX.items())]
        skipped = _reasons()
        Path(out).write_text(json.dumps({"rows": rows, "unavailable": skipped}, indent=1) + "\n")
