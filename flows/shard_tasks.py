"""Thin Prefect task wrappers around the stage functions.

Inputs are small and hashable (config dicts, shard ids, fingerprints, checksums) so that the
`INPUTS + TASK_SOURCE` cache policy resumes across runs; results are shard records (paths,
checksums, stats), never data or models. A task that finds its shard already sealed on disk
returns that record: resume works even when Prefect's own cache records are gone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from storage.rundir import GENERATIONS, RESULTS, RunDir, shard_content
from storage.verdict_cache import VerdictCache
from tasks import defaults, progress
from tasks.types import JudgeConfig
from tasks.plan import DatasetSpec
from tasks.problems import load_spec
from tasks.judging.shards import execute_shard
from tasks.execution.dask_cluster import placement

SHARD_CACHE = INPUTS + TASK_SOURCE


def _spec(dataset: dict[str, Any]) -> DatasetSpec:
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in dataset.items()}
    return DatasetSpec(**fields)


@task(name="load-problems")
def load_problems_task(dataset: dict[str, Any]) -> dict[str, Any]:
    loaded = load_spec(_spec(dataset))
    return {
        "dataset": loaded.manifest_record(),
        "task_ids": [p.task_id for p in loaded.problems],
        "malformed": [dataclasses.asdict(m) for m in loaded.malformed],
    }


@task(name="generate-shard", tags=["gpu"], cache_policy=SHARD_CACHE, retries=1, retry_delay_seconds=2)
def generate_shard_task(
    run_root: str,
    shard_id: int,
    task_ids: list[int],
    dataset: dict[str, Any],
    dataset_fingerprint: str,
    model: dict[str, Any],
    sampling: dict[str, Any],
    code_version: str = defaults.CODE_VERSION,
) -> dict[str, Any]:
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard

    rundir = RunDir(run_root)
    content = shard_content(task_ids, sampling["n"])
    record = rundir.sealed(GENERATIONS, shard_id, content)
    if record is not None:
        return record
    by_id = load_spec(_spec(dataset)).by_task_id()
    problems = [by_id[t] for t in task_ids]
    stats = generate_shard(
        problems,
        ModelConfig(**model),
        SamplingConfig(**sampling),
        shard_id,
        rundir.shard(GENERATIONS, shard_id),
        progress.current(),
    )
    return rundir.seal(GENERATIONS, shard_id, dataclasses.asdict(stats), content)


@task(name="execute-shard", cache_policy=SHARD_CACHE, retries=1, retry_delay_seconds=2)
def execute_shard_task(
    run_root: str,
    shard_id: int,
    generation: dict[str, Any],
    dataset: dict[str, Any],
    dataset_fingerprint: str,
    judge: dict[str, Any],
    workers: int | None,
    verdict_cache: bool = True,
    code_version: str = defaults.CODE_VERSION,
) -> dict[str, Any]:
    rundir = RunDir(run_root)
    record = rundir.sealed(RESULTS, shard_id)
    if record is not None and record["stats"].get("generation_sha256") == generation["sha256"]:
        return record
    current = rundir.sealed(GENERATIONS, shard_id)
    if current is None or current["sha256"] != generation["sha256"]:
        raise RuntimeError(
            f"generations shard {shard_id} changed or vanished since it was generated; re-run the flow to regenerate it"
        )
    # On a Dask worker: its share of the host's cores (unless `workers` says), a pool per thread.
    place = placement()
    cache = VerdictCache(defaults.VERDICT_CACHE) if verdict_cache else None
    try:
        stats = execute_shard(
            load_spec(_spec(dataset)),
            rundir.shard(GENERATIONS, shard_id),
            rundir.shard(RESULTS, shard_id),
            JudgeConfig(**judge),
            workers or place.pool_workers,
            cache,
            progress=progress.current(),
            pool_slot=place.pool_slot,
        )
    finally:
        if cache is not None:
            cache.close()
    stats["generation_sha256"] = generation["sha256"]
    if place.worker is not None:
        stats["dask_worker"] = place.worker
    return rundir.seal(RESULTS, shard_id, stats)
