"""Run each problem's own reference solutions on all its tests and classify the problem.

A problem is `verified` when every solution run passes every test, `partial` when some do, `broken`
when none does, `no_solutions` when the row has none, `skipped` when the row is malformed (its tests
or its `solutions` cannot be read). `failing_tests` are the tests every solution run fails: the
tests to suspect (a wrong expected answer, another input format).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from storage.atomic import write_json
from storage.dataset_check import CheckDir, write_check_rows
from storage.verdict_cache import VerdictCache
from tasks import defaults, statuses
from tasks.execution import sandbox
from tasks.judging.evaluate import EvaluationStats, Sample, evaluate_samples
from tasks.dataset_check.subset import tests_sha256
from tasks.problems import LoadedProblems, ReferenceSolutions
from tasks.types import JudgeConfig, MalformedRow, Problem, ProgramResult

_PASS = statuses.TACO_CODE[statuses.PASSED]


@dataclass
class ProblemCheck:
    """One row of dataset_check.parquet (storage/dataset_check.py: CHECK_SCHEMA)."""

    task_id: int
    problem_id: str
    difficulty: str
    solutions_total: int
    solutions_run: int
    solutions_passed: int
    status: str
    tests_total: int
    failing_tests: list[int] = field(default_factory=list)
    detail: str = ""
    tests_sha256: str | None = None  # None for a malformed row


def failing_tests(results: Sequence[ProgramResult], tests_total: int) -> list[int]:
    """Indices of the tests that every run fails; a test a run never reached (compile error, a
    crash) counts as failed by that run."""
    failing = set(range(tests_total))
    for r in results:
        failing -= {i for i, code in enumerate(r.test_codes[:tests_total]) if code == _PASS}
    return sorted(failing)


def _first_failure(r: ProgramResult) -> str:
    """`solution J, test index I: status: detail` for a failed run (no test for a compile error);
    I is 0-based like `failing_tests` (the judge's own 1-based "test N: " prefix is dropped)."""
    where, detail = f"solution {r.sample_idx}", r.detail
    if r.status != statuses.COMPILE_ERROR:
        index = next((i for i, code in enumerate(r.test_codes) if code != _PASS), len(r.test_codes))
        where += f", test index {index}"
        detail = detail.removeprefix(f"test {index + 1}: ")
    return f"{where}: {r.status}" + (f": {detail}" if detail else "")


def classify(problem: Problem, refs: ReferenceSolutions, results: Sequence[ProgramResult]) -> ProblemCheck:
    """The check row of a well-formed problem from its solutions' results (all tests run)."""
    row = ProblemCheck(
        problem.task_id,
        problem.problem_id,
        problem.difficulty,
        refs.total,
        len(results),
        sum(r.passed for r in results),
        statuses.NO_SOLUTIONS,
        problem.num_tests,
        tests_sha256=tests_sha256(problem),
    )
    if refs.error is not None:
        return dataclasses.replace(row, status=statuses.SKIPPED, detail=refs.error[: defaults.DETAIL_MAX_CHARS])
    if not results:
        return dataclasses.replace(row, detail="the row has no reference solution")
    if row.solutions_passed == len(results):
        return dataclasses.replace(row, status=statuses.VERIFIED)
    first = next(r for r in sorted(results, key=lambda r: r.sample_idx) if not r.passed)
    return dataclasses.replace(
        row,
        status=statuses.PARTIAL if row.solutions_passed else statuses.BROKEN,
        failing_tests=failing_tests(results, problem.num_tests),
        detail=_first_failure(first)[: defaults.DETAIL_MAX_CHARS],
    )


def malformed_row(m: MalformedRow, refs: ReferenceSolutions) -> ProblemCheck:
    return ProblemCheck(m.index, m.problem_id, m.difficulty, refs.total, 0, 0, statuses.SKIPPED, 0, [], m.reason)


def check_dataset(
    loaded: LoadedProblems,
    judge_config: JudgeConfig,
    *,
    workers: int | None = None,
    cache: VerdictCache | None = None,
    on_progress: Callable[[EvaluationStats, int], None] | None = None,
) -> tuple[list[ProblemCheck], EvaluationStats]:
    """Check rows for every selected problem, malformed ones included, in task_id order.
    `loaded` must come from `load_problems(..., max_solutions=K)`. Every test runs (no early stop);
    verdicts go through `cache` like `evaluate`'s, so a killed check resumes where it stopped."""
    selected = [p.task_id for p in loaded.problems] + [m.index for m in loaded.malformed]
    missing = [t for t in selected if t not in loaded.solutions]
    if missing:
        raise ValueError(f"reference solutions of tasks {missing[:10]} were not loaded (pass max_solutions)")
    judge_config = dataclasses.replace(judge_config, early_stop=False)
    samples = [
        Sample(p.task_id, j, code)
        for p in loaded.problems
        if loaded.solutions[p.task_id].error is None
        for j, code in enumerate(loaded.solutions[p.task_id].codes)
    ]
    results, stats = evaluate_samples(
        loaded.by_task_id(), samples, judge_config, workers=workers, cache=cache, on_progress=on_progress
    )
    by_task: dict[int, list[ProgramResult]] = defaultdict(list)
    for r in results:
        by_task[r.task_id].append(r)
    rows = [classify(p, loaded.solutions[p.task_id], by_task[p.task_id]) for p in loaded.problems]
    rows += [malformed_row(m, loaded.solutions[m.index]) for m in loaded.malformed]
    return sorted(rows, key=lambda r: r.task_id), stats


def summarise(
    loaded: LoadedProblems,
    rows: Sequence[ProblemCheck],
    judge_config: JudgeConfig,
    max_solutions: int,
    stats: EvaluationStats,
) -> dict[str, Any]:
    """dataset_check.json: counts by status overall and by difficulty, the verified and usable
    task ids, and what was checked how."""
    by_difficulty: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        by_difficulty[r.difficulty][r.status] += 1
    overall = Counter(r.status for r in rows)
    return {
        "problems": len(rows),
        "counts": {s: overall.get(s, 0) for s in statuses.CHECK_STATUSES},
        "by_difficulty": {
            d: {s: c.get(s, 0) for s in statuses.CHECK_STATUSES} for d, c in sorted(by_difficulty.items())
        },
        "verified": [r.task_id for r in rows if r.status == statuses.VERIFIED],
        "usable": [r.task_id for r in rows if r.status in statuses.USABLE],
        "dataset": {
            "source": loaded.source,
            "split": loaded.split,
            "revision": loaded.revision,
            "rows_in_split": loaded.rows_in_split,
            "filters": loaded.filters,
            "special_judges_applied": loaded.special_judges_applied,
        },
        "max_solutions": max_solutions,
        "judge": dataclasses.asdict(dataclasses.replace(judge_config, early_stop=False)),
        "isolation": sandbox.describe(judge_config.isolation),
        "code_version": defaults.CODE_VERSION,
        "execution": {
            "solutions_run": sum(r.solutions_run for r in rows),
            "programs": stats.programs,
            "programs_cached": stats.programs_cached,
            "tests_run": stats.tests_run,
            "wall_s": round(stats.wall_s, 3),
            "tests_per_s": round(stats.tests_per_s, 1),
        },
    }


def run_check(
    loaded: LoadedProblems,
    judge_config: JudgeConfig,
    out_dir: str | Path,
    *,
    max_solutions: int,
    workers: int | None = None,
    cache: VerdictCache | None = None,
    on_progress: Callable[[EvaluationStats, int], None] | None = None,
) -> tuple[dict[str, Any], EvaluationStats]:
    """Check `loaded` and write OUT/dataset_check.parquet and OUT/dataset_check.json; returns the
    summary (the JSON's content) and the execution stats."""
    started = time.perf_counter()
    rows, stats = check_dataset(loaded, judge_config, workers=workers, cache=cache, on_progress=on_progress)
    summary = summarise(loaded, rows, judge_config, max_solutions, stats)
    summary["execution"]["wall_s"] = round(time.perf_counter() - started, 3)
    folder = CheckDir(out_dir)
    write_check_rows(folder.parquet, rows)
    write_json(folder.summary, summary)
    return summary, stats
