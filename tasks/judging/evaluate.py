"""Judge a dataset's samples: dedupe, cache, run on the execution pool, verdicts per sample.

This is the "how to judge a dataset" half; `tasks.execution` is "how to run code".
"""

from __future__ import annotations

import collections
import contextlib
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

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
    peak_worker_rss_mb: float = 0.0  # the largest any execution worker has been (0: none ran)

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


@dataclass
class _Task:
    """What judging keeps of a problem between runs of its programs (not its tests)."""

    content_hash: str
    num_tests: int
    programs: dict[str, str]  # verdict key → code


def _program_jobs(
    problems: Mapping[int, Problem],
    tasks: dict[int, _Task],
    todo: list[tuple[int, str]],
    live: dict[int, Problem],
    early_stop: bool,
) -> Iterator[ProgramJob]:
    """The jobs of `todo` ((task_id, verdict key), grouped by problem), each problem looked up
    when its first job is pulled: a lazy `problems` mapping is never read whole."""
    for job_id, (task_id, key) in enumerate(todo):
        problem = live.get(task_id)
        if problem is None:
            problem = live[task_id] = problems[task_id]
        yield ProgramJob(
            job_id=job_id,
            code=tasks[task_id].programs[key],
            fn_name=problem.fn_name,
            inputs=problem.inputs,
            stop_on_failure=early_stop,
            tests_key=tasks[task_id].content_hash,
        )


def evaluate_samples(
    problems: Mapping[int, Problem],
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
    expected and how many verdicts came from the cache, then each program judged with its tests.

    `problems` may be any mapping, also one that loads problems from disk when asked: each is
    read once to hash it, then again when its programs run, and held only while they do."""
    skipped = skipped or {}
    stats = EvaluationStats()
    start = time.perf_counter()
    samples = list(samples)
    judge_key = judge_config.cache_key()

    # Unique programs per problem; a verdict is shared by every sample with the same code.
    tasks: dict[int, _Task] = {}
    owner: dict[str, int] = {}  # verdict key → the task that runs it (duplicate problems share it)
    code_shas: list[str] = []
    sample_keys: list[str | None] = []
    for s in samples:
        sha = code_sha256(s.code)
        code_shas.append(sha)
        task = tasks.get(s.task_id)
        if task is None and s.task_id not in skipped:
            problem = problems.get(s.task_id)
            if problem is not None:
                task = tasks[s.task_id] = _Task(problem.content_hash(), problem.num_tests, {})
        if task is None:
            sample_keys.append(None)
            continue
        key = verdict_key(task.content_hash, sha, judge_key)
        if owner.setdefault(key, s.task_id) == s.task_id:
            task.programs.setdefault(key, s.code)
        sample_keys.append(key)
    stats.programs = sum(len(t.programs) for t in tasks.values())

    unique = [(task_id, key) for task_id, task in tasks.items() for key in task.programs]
    verdicts: dict[str, dict[str, Any]] = {}
    if cache is not None:
        verdicts.update(cache.get_many([key for _, key in unique]))
        stats.programs_cached = len(verdicts)
    from_cache = set(verdicts)
    reported_at = time.perf_counter()
    if progress:
        progress(
            ProgressEvent(
                EXECUTE,
                done=stats.programs_cached,
                expected=stats.programs - len(sample_keys),
                seconds=reported_at - start,
            )
        )
    # Problems with the most tests first, so the last worker to finish is not stuck with a
    # 200-test problem; a problem's programs stay together (its test set crosses once).
    todo = sorted((u for u in unique if u[1] not in verdicts), key=lambda u: -tasks[u[0]].num_tests)
    live: dict[int, Problem] = {}  # problems with programs in flight
    remaining = collections.Counter(task_id for task_id, _ in todo)

    def judge(job: ProgramJob, index: int, outcome: TestOutcome) -> tuple[judging.TestVerdict, bool]:
        try:
            verdict = judging.judge_test(live[todo[job.job_id][0]], index, outcome, judge_config.float_tolerance)
        except Exception as exc:  # whatever a program made its output, it cannot end the run
            verdict = judging.TestVerdict(
                statuses.RUNTIME_ERROR, f"output could not be judged: {type(exc).__name__}", outcome.elapsed_ms
            )
        return verdict, verdict.passed or not judge_config.early_stop

    if todo:
        with contextlib.ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(ExecutionPool(workers, limits_for(judge_config), judge_config.isolation))
            restarts_before = pool.worker_restarts
            jobs = _program_jobs(problems, tasks, todo, live, judge_config.early_stop)
            for run in pool.run(jobs, judge):
                task_id, key = todo[run.job.job_id]
                verdict = _verdict_from_run(run, tasks[task_id].num_tests)
                verdicts[key] = verdict
                remaining[task_id] -= 1
                if not remaining[task_id]:
                    del live[task_id]
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
            stats.peak_worker_rss_mb = round(pool.peak_worker_rss_kb / 1024, 1)
    stats.wall_s = time.perf_counter() - start

    results: list[ProgramResult] = []
    for s, key, sha in zip(samples, sample_keys, code_shas):
        if key is None:
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
                tests_total=tasks[s.task_id].num_tests,
                test_codes=list(v["test_codes"]),
                runtime_ms=v["runtime_ms"],
                detail=v["detail"],
                cached=key in from_cache,
            )
        )
    return results, stats
