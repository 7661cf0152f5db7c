"""Per-shard work of the pipeline, as plain functions (the Prefect tasks wrap these)."""

from __future__ import annotations

import atexit
import resource
import threading
import time
from pathlib import Path
from typing import Any

from storage.generations import read_generations
from storage.tables import RESULTS_SCHEMA, write_rows
from tasks.types import JudgeConfig
from tasks.judging.evaluate import Sample, evaluate_samples, limits_for
from tasks.execution.pool import ExecutionPool
from tasks.problems import LoadedProblems
from tasks.progress import ProgressSink, retracted_on_failure

_POOLS: dict[tuple, tuple[ExecutionPool, threading.Lock]] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(
    workers: int | None, judge_config: JudgeConfig, slot: int | None = None
) -> tuple[ExecutionPool, threading.Lock]:
    """One execution pool per process, configuration and slot, reused by every shard (workers
    start once); the lock serialises shards on it, as it already uses its share of the cores.
    Threads that share the cores between them (a Dask worker's) each pass their own slot."""
    key = (workers, limits_for(judge_config), judge_config.isolation, slot)
    with _POOLS_LOCK:
        if key not in _POOLS:
            pool = ExecutionPool(workers, limits_for(judge_config), judge_config.isolation).__enter__()
            atexit.register(pool.close)
            _POOLS[key] = (pool, threading.Lock())
        return _POOLS[key]


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process and of its finished children (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_rss_mb": round(own, 1), "peak_child_rss_mb": round(children, 1)}


def execute_shard(
    loaded: LoadedProblems,
    generations_path: Path,
    out_path: Path,
    judge_config: JudgeConfig,
    workers: int | None = None,
    cache: Any = None,
    progress: ProgressSink | None = None,
    pool_slot: int | None = None,
) -> dict[str, Any]:
    """Judge one generations shard; write its results Parquet; return the shard's stats. Programs
    and tests go to `progress` as they are judged (taken back if the shard fails)."""
    start = time.perf_counter()
    samples = [Sample(t, i, c) for t, i, c in read_generations(generations_path)]
    skipped = {m.index: f"malformed problem: {m.reason}" for m in loaded.malformed}
    pool, lock = shared_pool(workers, judge_config, pool_slot)
    with retracted_on_failure(progress) as report:
        with lock:
            results, stats = evaluate_samples(
                loaded.by_task_id(), samples, judge_config, cache=cache, skipped=skipped, pool=pool, progress=report
            )
        results.sort(key=lambda r: (r.task_id, r.sample_idx))
        write_rows(out_path, results, RESULTS_SCHEMA)
    return {
        "samples": len(samples),
        "programs": stats.programs,
        "programs_executed": stats.programs_executed,
        "programs_cached": stats.programs_cached,
        "tests_run": stats.tests_run,
        "tests_per_s": round(stats.tests_per_s, 1),
        "passed": sum(r.passed for r in results),
        "wall_s": round(time.perf_counter() - start, 3),
        "worker_restarts": stats.worker_restarts,
        **peak_memory_mb(),
        "peak_worker_rss_mb": pool.peak_worker_rss_kb and round(pool.peak_worker_rss_kb / 1024, 1),
    }
