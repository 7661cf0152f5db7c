"""Real third-party programs: every accepted Codeforces solution of the CodeContests sample must
pass its real tests, at every isolation level.

A reference that fails here is an evaluator bug (the data was verified with one fresh
`python3 solution.py < input` per test), never a reason to change the expected result. The
solutions use the idioms a faithful engine must get right: the main guard, the FastIO template,
`threading.stack_size` with deep recursion, `sys.stdin.buffer`, and float answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks import statuses
from tasks.types import JudgeConfig
from tasks.judging.evaluate import Sample, evaluate_samples
from tasks.execution import sandbox
from tasks.problems import load_problems

DATA = Path(__file__).resolve().parents[1] / "data" / "codecontests_sample" / "problems.jsonl"
# Generous: the slowest reference needs up to ~1.7 s per test on a loaded 2-core machine, and this
# test is about what programs see, not about speed.
TIMEOUT_S = 10.0


def reference_samples() -> list[Sample]:
    with DATA.open() as fh:
        return [Sample(task_id, 0, json.loads(json.loads(line)["solutions"])[0]) for task_id, line in enumerate(fh)]


@pytest.mark.parametrize("level", sandbox.LEVELS)
def test_every_reference_solution_passes(level):
    why = sandbox.unavailable_reasons().get(level)
    if why is not None:
        pytest.skip(f"isolation level {level} is not available here: {why}")
    loaded = load_problems(str(DATA))
    assert not loaded.malformed and len(loaded.problems) == 40
    problems = {p.task_id: p for p in loaded.problems}
    results, stats = evaluate_samples(problems, reference_samples(), JudgeConfig(timeout_s=TIMEOUT_S, isolation=level))
    failures = {problems[r.task_id].problem_id: f"{r.status}: {r.detail}" for r in results if not r.passed}
    assert failures == {}
    assert all(r.status == statuses.PASSED and r.tests_run == r.tests_total for r in results)
    assert stats.tests_run == 1188
