"""Shards through generation and execution: each shard's execution is submitted the moment its
generation is done, so generation of shard k+1 overlaps execution of shard k wherever they run.

Generation runs in this process (`LocalGeneration`: one chained lane of tasks per local device) or
on generation lanes of a GPU work pool (`flows.lanes.DeploymentLanes`); execution on this flow's
thread runner, or on a Dask cluster (`flows.dask_runner`). Both sides only hand over shard
records (paths, checksums, stats), never data.
"""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass
from typing import Any, Protocol

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.utilities.annotations import allow_failure

from flows.shard_tasks import execute_shard_task, generate_shard_task
from storage.rundir import GENERATIONS, RESULTS, RunDir

POLL_S = 0.2  # the longest wait before finished work is looked for again


@dataclass(frozen=True)
class ShardWork:
    """What every shard task of one run is given."""

    rundir: RunDir
    shards: list[list[int]]  # shard id → task ids
    storage: Any  # Prefect result storage
    dataset: dict[str, Any]
    dataset_fingerprint: str
    model: dict[str, Any]
    sampling: dict[str, Any]
    judge: dict[str, Any]
    workers: int | None
    verdict_cache: bool = True  # reuse and store verdicts across runs (`--no-cache`: False)


# (shard id, generation record or None if it failed, the generation's future if there is one)
Finished = tuple[int, "dict[str, Any] | None", Any]


class Generation(Protocol):
    def poll(self, timeout: float) -> list[Finished]:
        """Shards whose generation ended since the last call, waiting up to `timeout` seconds for
        one when none has."""


def outcome(future: Any) -> dict[str, Any] | None:
    """A finished future's shard record, None if its task failed."""
    future.wait()
    return future.result(raise_on_failure=False) if future.state.is_completed() else None


def done(future: Any) -> bool:
    return future.wrapped_future.done()


def wait_any(futures: list[Any], timeout: float) -> None:
    """Until one of `futures` is done, at most `timeout` seconds. Futures of this flow's threads
    wake us the moment they end; a Dask future is looked at again after `timeout`."""
    wrapped = [f.wrapped_future for f in futures]
    if wrapped and all(isinstance(w, concurrent.futures.Future) for w in wrapped):
        concurrent.futures.wait(wrapped, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED)
    else:
        time.sleep(timeout)


class LocalGeneration:
    """Generation tasks on this flow's thread runner, in the process that holds the model: one
    chained lane per device (a failed shard does not stop its lane), all submitted at once."""

    def __init__(self, work: ShardWork, chosen: list[int], fresh: set[int], devices: list[str]):
        self.futures: dict[int, Any] = {}
        prev_by_lane: dict[int, Any] = {}
        for shard_id in chosen:
            lane = shard_id % len(devices)
            prev = prev_by_lane.get(lane)
            self.futures[shard_id] = prev_by_lane[lane] = generate_shard_task.with_options(
                result_storage=work.storage,
                refresh_cache=shard_id in fresh,
                task_run_name=f"generate-shard-{shard_id}",
            ).submit(
                str(work.rundir.root),
                shard_id,
                work.shards[shard_id],
                work.dataset,
                work.dataset_fingerprint,
                {**work.model, "device": devices[lane]},
                work.sampling,
                wait_for=[allow_failure(prev)] if prev is not None else None,
            )

    def poll(self, timeout: float) -> list[Finished]:
        # Woken the moment a generation ends: its execution is submitted at once, as if chained.
        wait_any(list(self.futures.values()), timeout)
        ended = [(s, self.futures.pop(s)) for s, f in list(self.futures.items()) if done(f)]
        return [(s, outcome(f), f) for s, f in ended]


class Execution:
    """Submits execute-shard tasks: to this flow's thread runner, or to `runner` (a started
    DaskTaskRunner) whose workers each judge one shard at a time on their own pool."""

    def __init__(self, work: ShardWork, fresh: set[int], runner: Any = None):
        self.work, self.fresh, self.runner = work, fresh, runner

    def submit(self, shard_id: int, generation: dict[str, Any], upstream: Any) -> Any:
        w = self.work
        task = execute_shard_task.with_options(
            result_storage=w.storage, refresh_cache=shard_id in self.fresh, task_run_name=f"execute-shard-{shard_id}"
        )
        args = (
            str(w.rundir.root),
            shard_id,
            generation,
            w.dataset,
            w.dataset_fingerprint,
            w.judge,
            w.workers,
            w.verdict_cache,
        )
        if self.runner is None:
            # Waiting for a finished future costs nothing and draws the dependency in the UI.
            return task.submit(*args, wait_for=[upstream] if upstream is not None else None)
        names = (
            "run_root",
            "shard_id",
            "generation",
            "dataset",
            "dataset_fingerprint",
            "judge",
            "workers",
            "verdict_cache",
        )
        return self.runner.submit(task, parameters=dict(zip(names, args)))


def run_shards(run_id: str, chosen: list[int], generation: Generation, execution: Execution) -> list[int]:
    """Drive every chosen shard through generation and execution, with a progress artifact;
    returns the shards that failed (their generation or their execution)."""
    progress_id = create_progress_artifact(
        progress=0.0, key="taco-eval-progress", description=f"run {run_id}: shards generated and judged"
    )
    executing: dict[int, Any] = {}
    failed: set[int] = set()
    waiting = set(chosen)
    steps, total = 0, 2 * len(chosen)
    samples = {GENERATIONS: 0, RESULTS: 0}
    while waiting or executing:
        moved = False
        for shard_id, record, upstream in generation.poll(POLL_S) if waiting else []:
            waiting.discard(shard_id)
            moved = True
            if record is None:
                failed.add(shard_id)
                steps += 2  # its execution will not run either
                continue
            steps += 1
            samples[GENERATIONS] += record["stats"].get("samples", 0)
            executing[shard_id] = execution.submit(shard_id, record, upstream)
        for shard_id in [s for s, f in executing.items() if done(f)]:
            record = outcome(executing.pop(shard_id))
            moved = True
            steps += 1
            if record is None:
                failed.add(shard_id)
            else:
                samples[RESULTS] += record["stats"].get("samples", 0)
        if moved:
            update_progress_artifact(
                progress_id,
                100.0 * steps / max(1, total),
                description=f"{samples[GENERATIONS]} samples generated, {samples[RESULTS]} judged",
            )
        elif not waiting:
            wait_any(list(executing.values()), POLL_S)
    return sorted(failed)
