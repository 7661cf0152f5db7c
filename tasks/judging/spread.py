"""Judge samples on a Dask cluster (`taco-eval evaluate --dask-address/--dask-workers`).

Problems are split into parts, each judged by `evaluate_samples` on a worker's own execution pool:
a problem never spans two parts, so identical programs are still judged once, and every verdict
is the one a local run gives. Only a part's problems and samples travel to a worker, and only
their verdicts come back.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from storage.verdict_cache import VerdictCache
from tasks import defaults
from tasks.types import JudgeConfig, Problem, ProgramResult
from tasks.execution.dask_cluster import placement
from tasks.judging.evaluate import EvaluationStats, Sample, code_sha256, evaluate_samples
from tasks.judging.shards import shared_pool
from tasks.progress import EXECUTE, ProgressEvent, ProgressSink

SUMMED = ("programs", "programs_executed", "programs_cached", "tests_run", "worker_restarts")


def split_parts(problems: dict[int, Problem], samples: list[Sample], min_samples: int) -> list[list[int]]:
    """Task ids in parts of at least `min_samples` samples (the last may hold fewer), the
    heaviest problems (tests × samples) first, so the longest work starts first."""
    count: dict[int, int] = defaultdict(int)
    for s in samples:
        count[s.task_id] += 1
    tests = {t: problems[t].num_tests if t in problems else 0 for t in count}
    order = sorted(count, key=lambda t: (-tests[t] * count[t], t))
    parts: list[list[int]] = [[]]
    held = 0
    for t in order:
        if held >= min_samples:
            parts.append([])
            held = 0
        parts[-1].append(t)
        held += count[t]
    return [p for p in parts if p]


def judge_part(
    problems: dict[int, Problem],
    samples: list[Sample],
    judge_config: JudgeConfig,
    use_cache: bool,
    skipped: dict[int, str],
    workers: int | None,
) -> tuple[list[ProgramResult], EvaluationStats]:
    """Runs on a worker: one part's verdicts on the worker's shared execution pool (`workers`
    processes, default: its share of the host's cores)."""
    place = placement()
    pool, lock = shared_pool(workers or place.pool_workers, judge_config, place.pool_slot)
    cache = VerdictCache(defaults.VERDICT_CACHE) if use_cache else None
    try:
        with lock:
            return evaluate_samples(problems, samples, judge_config, cache=cache, skipped=skipped, pool=pool)
    finally:
        if cache is not None:
            cache.close()


def evaluate_on_cluster(
    client: Any,
    problems: dict[int, Problem],
    samples: list[Sample],
    judge_config: JudgeConfig,
    *,
    use_cache: bool = True,
    skipped: dict[int, str] | None = None,
    workers: int | None = None,
    progress: ProgressSink | None = None,
) -> tuple[list[ProgramResult], EvaluationStats]:
    """Every sample's verdict, judged on the cluster behind `client`. Like `evaluate_samples`, it
    corrects the planned one program per sample to the distinct programs, then reports each part's
    programs and tests to `progress` as the part ends."""
    import distributed

    skipped = skipped or {}
    start = time.perf_counter()
    by_task: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_task[s.task_id].append(s)
    if progress:
        unique = {(s.task_id, code_sha256(s.code)) for s in samples if s.task_id in problems}
        progress(ProgressEvent(EXECUTE, expected=len(unique) - len(samples)))
    reported_at = start
    stats = EvaluationStats()
    parts = split_parts(problems, samples, defaults.CLUSTER_PART_SAMPLES)
    futures = [
        client.submit(
            judge_part,
            {t: problems[t] for t in part if t in problems},
            [s for t in part for s in by_task[t]],
            judge_config,
            use_cache,
            {t: skipped[t] for t in part if t in skipped},
            workers,
            pure=False,
            priority=len(parts) - i,
        )
        for i, part in enumerate(parts)
    ]
    results: list[ProgramResult] = []
    for future in distributed.as_completed(futures, loop=client.loop):
        part_results, part_stats = future.result()
        results.extend(part_results)
        for name in SUMMED:
            setattr(stats, name, getattr(stats, name) + getattr(part_stats, name))
        stats.wall_s = time.perf_counter() - start
        if progress:
            now = time.perf_counter()
            progress(ProgressEvent(EXECUTE, part_stats.programs, part_stats.tests_run, seconds=now - reported_at))
            reported_at = now
    return results, stats
