"""Judge a dataset's samples: dedupe, cache, run on the execution pool, verdicts per sample.

This is the "how to judge a dataset" half; `tasks.execution` is "how to run code".
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Iterable

from tasks import defaults, statuses
from tasks.types import JudgeConfig, Problem, ProgramResult, sha256_text
from tasks.progress import EXECUTE, ProgressEvent, ProgressSink
from storage.verdict_cache import VerdictCache, verdict_key
from tasks.judging import rules as judging
from tasks.execution.limits import Limits
from tasks.execution.pool import ExecutionPool, ProgramRun
from tasks.execution.runner import TestOutcome
from tasks.execution.worker import ProgramJob


@dataclass(frozen=True)
class Sample:
    task_id: int
    sample_idx: int
    code: str


@dataclass
class EvaluationStats:
    programs: int = 0  # unique (problem, code) pairs
    programs_executed: int = 0
    programs_cached: int = 0
    tests_run: int = 0
    wall_s: float = 0.0
    worker_restarts: int = 0

    @property
    def tests_per_s(self) -> float:
        return self.tests_run / self.wall_s if self.wall_s else 0.0


def limits_for(judge_config: JudgeConfig) -> Limits:
    return Limits(
        timeout_s=judge_config.timeout_s,
        memory_limit_mb=judge_config.memory_limit_mb,
        output_limit_bytes=judge_config.output_limit_bytes,
    )


def code_sha256(code: str) -> str:
    return sha256_text(code)


def _verdict_from_run(run: ProgramRun, tests_total: int) -> dict[str, Any]:
    """A program's verdict: passed only if every test ran and passed; else the first failure."""
    if run.compile_error is not None:
        return dict(
            passed=False,
            status=statuses.COMPILE_ERROR,
            tests_run=0,
            test_codes=[-2],
            runtime_ms=run.elapsed_ms,
            detail=run.compile_error[: defaults.DETAIL_MAX_CHARS],
        )
    verdicts: list[judging.TestVerdict] = run.verdicts
    codes = [statuses.TACO_CODE[v.status] for v in verdicts]
    failure = next((v for v in verdicts if not v.passed), None)
    if run.crashed is not None:
        status, detail = statuses.SANDBOX_VIOLATION, f"program {run.crashed}"
        codes.append(statuses.TACO_CODE[status])
    elif failure is not None:
        status, detail = failure.status, failure.detail
    elif len(verdicts) < tests_total:
        status, detail = statuses.RUNTIME_ERROR, f"only {len(verdicts)} of {tests_total} tests ran"
    else:
        status, detail = statuses.PASSED, ""
    return dict(
        passed=status == statuses.PASSED,
        status=status,
        tests_run=len(verdicts),
        test_codes=codes,
        runtime_ms=round(sum(v.elapsed_ms for v in verdicts), 3),
        detail=detail[: defaults.DETAIL_MAX_CHARS],
    )


def evaluate_samples(
    problems: dict[int, Problem],
    samples: Iterable[Sample],
    judge_config: JudgeConfig,
    *,
    workers: int | None = None,
    cache: VerdictCache | None = None,
    skipped: dict[int, str] | None = None,
    progress: ProgressSink | None = None,
    pool: ExecutionPool | None = None,
) -> tuple[list[ProgramResult], EvaluationStats]:
    """Verdict for every sample. Samples of problems in `skipped` (task_id → reason) or unknown
    task ids get status `skipped`; identical programs of a problem are judged once. A running
    `pool` (with the same limits) is reused; otherwise one is started for this call.

    `progress` hears, first, how many programs there are against the one per sample the caller
    expected and how many verdicts came from the cache, then each program judged with its tests."""
    skipped = skipped or {}
    stats = EvaluationStats()
    start = time.perf_counter()
    samples = list(samples)
    judge_key = judge_config.cache_key()

    # Unique programs per problem; a verdict is shared by every sample with the same code.
    unique: dict[str, tuple[Problem, str, str]] = {}  # key → (problem, code, code_sha)
    sample_keys: list[str | None] = []
    problem_hashes: dict[int, str] = {}
    for s in samples:
        problem = problems.get(s.task_id)
        if problem is None:
            sample_keys.append(None)
            continue
        if s.task_id not in problem_hashes:
            problem_hashes[s.task_id] = problem.content_hash()
        sha = code_sha256(s.code)
        key = verdict_key(problem_hashes[s.task_id], sha, judge_key)
        unique.setdefault(key, (problem, s.code, sha))
        sample_keys.append(key)
    stats.programs = len(unique)

    verdicts: dict[str, dict[str, Any]] = {}
    if cache is not None:
        verdicts.update(cache.get_many(unique))
        stats.programs_cached = len(verdicts)
    from_cache = set(verdicts)
    reported_at = time.perf_counter()
    if progress:
        progress(
            ProgressEvent(
                EXECUTE,
                done=stats.programs_cached,
                expected=stats.programs - len(samples),
                seconds=reported_at - start,
            )
        )
    todo = [k for k in unique if k not in verdicts]
    # Longest programs first so the last worker to finish is not stuck with a 200-test problem.
    todo.sort(key=lambda k: -unique[k][0].num_tests)
    jobs = [
        ProgramJob(
            job_id=i,
            code=unique[k][1],
            fn_name=unique[k][0].fn_name,
            inputs=unique[k][0].inputs,
            stop_on_failure=judge_config.early_stop,
        )
        for i, k in enumerate(todo)
    ]

    def judge(job: ProgramJob, index: int, outcome: TestOutcome) -> tuple[judging.TestVerdict, bool]:
        try:
            verdict = judging.judge_test(unique[todo[job.job_id]][0], index, outcome, judge_config.float_tolerance)
        except Exception as exc:  # whatever a program made its output, it cannot end the run
            verdict = judging.TestVerdict(
                statuses.RUNTIME_ERROR, f"output could not be judged: {type(exc).__name__}", outcome.elapsed_ms
            )
        return verdict, verdict.passed or not judge_config.early_stop

    if jobs:
        with contextlib.ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(ExecutionPool(workers, limits_for(judge_config), judge_config.isolation))
            restarts_before = pool.worker_restarts
            for run in pool.run(jobs, judge):
                key = todo[run.job.job_id]
                verdict = _verdict_from_run(run, unique[key][0].num_tests)
                verdicts[key] = verdict
                if cache is not None and run.crashed is None:
                    cache.put(key, verdict)
                stats.programs_executed += 1
                stats.tests_run += verdict["tests_run"]
                stats.wall_s = time.perf_counter() - start
                if progress:
                    now = time.perf_counter()
                    progress(ProgressEvent(EXECUTE, done=1, work=verdict["tests_run"], seconds=now - reported_at))
                    reported_at = now
            stats.worker_restarts = pool.worker_restarts - restarts_before
    stats.wall_s = time.perf_counter() - start

    results: list[ProgramResult] = []
    for s, key in zip(samples, sample_keys):
        sha = code_sha256(s.code) if key is None else unique[key][2]
        if key is None or s.task_id in skipped:
            reason = skipped.get(s.task_id, "task_id is not a problem of the loaded dataset split")
            results.append(
                ProgramResult(
                    s.task_id,
                    s.sample_idx,
                    sha,
                    False,
                    statuses.SKIPPED,
                    0,
                    0,
                    [],
                    0.0,
                    reason[: defaults.DETAIL_MAX_CHARS],
                )
            )
            continue
        v = verdicts[key]
        results.append(
            ProgramResult(
                task_id=s.task_id,
                sample_idx=s.sample_idx,
                code_sha256=sha,
                passed=v["passed"],
                status=v["status"],
                tests_run=v["tests_run"],
                tests_total=unique[key][0].num_tests,
                test_codes=list(v["test_codes"]),
                runtime_ms=v["runtime_ms"],
                detail=v["detail"],
                cached=key in from_cache,
            )
        )
    return results, stats
