"""Small builders shared by tests."""

from __future__ import annotations

from tasks.types import JUDGE_DEFAULT, MODE_CALL, MODE_STDIN, JudgeConfig, Problem
from tasks.judging.evaluate import Sample, evaluate_samples


def stdin_problem(inputs, outputs, task_id=0, judge=JUDGE_DEFAULT, difficulty="EASY", skills=("Sorting",)):
    return Problem(
        task_id, f"t{task_id}", "q", "", None, MODE_STDIN, list(inputs), list(outputs), difficulty, tuple(skills), judge
    )


def call_problem(fn_name, inputs, outputs, task_id=0, starter="", difficulty="EASY"):
    return Problem(
        task_id,
        f"t{task_id}",
        "q",
        starter,
        fn_name,
        MODE_CALL,
        list(inputs),
        list(outputs),
        difficulty,
        ("Mathematics",),
    )


def judge_one(problem, code, timeout_s=2.0, early_stop=True, workers=1, **kw):
    """Evaluate one program on one problem; return its ProgramResult."""
    config = JudgeConfig(timeout_s=timeout_s, early_stop=early_stop, **kw)
    results, _ = evaluate_samples(
        {problem.task_id: problem}, [Sample(problem.task_id, 0, code)], config, workers=workers
    )
    return results[0]


def judge_many(problem, codes, timeout_s=2.0, early_stop=True, workers=2, cache=None):
    config = JudgeConfig(timeout_s=timeout_s, early_stop=early_stop)
    samples = [Sample(problem.task_id, i, c) for i, c in enumerate(codes)]
    return evaluate_samples({problem.task_id: problem}, samples, config, workers=workers, cache=cache)
