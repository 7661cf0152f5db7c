"""Generation lanes on other machines: the `generate` deployment (prefect.yaml), run by the
workers of a GPU work pool, one lane per flow run, its device from the worker's environment.

Shard i belongs to lane i mod L, always: a lane run again (a retried parent, a rescheduled lane)
regenerates only its own shards that are not sealed yet. Lanes hand their shards over through
the run folder, which every machine shares: the parent flow (`DeploymentLanes`) watches the
seals and executes each shard as soon as it is sealed, while the lanes go on generating.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.states import Failed, Scheduled

from flows.shard_schedule import Finished, ShardWork
from flows.shard_tasks import generate_shard_task
from storage.rundir import GENERATIONS, RunDir, shard_content
from tasks import defaults
from tasks.execution.dask_cluster import ClusterError

LANE_ENV = "TACO_EVAL_LANE"  # set in a lane's environment: its index
WAIT_LOG_S = 60.0  # how often lanes that have not ended are named in the log


def lane_of(shard_id: int, lanes: int) -> int:
    return shard_id % lanes


def lane_env(lane: int, lanes: int, queues: int) -> dict[str, str]:
    """Lane i goes to queue i mod Q. A host whose queue gets several lanes runs them on its GPUs
    0, 1, …; with one lane per queue the worker's own CUDA_VISIBLE_DEVICES stays as it is."""
    env = {LANE_ENV: str(lane)}
    if lanes > queues:
        env["CUDA_VISIBLE_DEVICES"] = str(lane // queues)
    return env


@flow(name="taco-eval-generate", log_prints=True)
def generate_lane_flow(
    run_root: str,
    lane: int,
    lanes: int,
    shards: dict[int, list[int]],
    dataset: dict[str, Any],
    dataset_fingerprint: str,
    model: dict[str, Any],
    sampling: dict[str, Any],
) -> dict[str, Any]:
    """One generation lane: generate and seal the given shards (this lane's) not sealed yet, in
    order. A failed shard does not stop the lane; the lane then fails naming it."""
    logger = get_run_logger()
    rundir = RunDir(run_root)
    generated, failed = [], []
    for shard_id in sorted(shards):
        if rundir.sealed(GENERATIONS, shard_id, shard_content(shards[shard_id], sampling["n"])) is not None:
            continue
        # Seals are the record here: nothing for Prefect to cache or persist.
        state = generate_shard_task.with_options(
            task_run_name=f"generate-shard-{shard_id}", cache_policy=NO_CACHE, persist_result=False
        )(run_root, shard_id, shards[shard_id], dataset, dataset_fingerprint, model, sampling, return_state=True)
        (generated if state.is_completed() else failed).append(shard_id)
    logger.info("lane %s of %s: generated shards %s", lane, lanes, generated)
    if failed:
        return Failed(message=f"lane {lane}: shards {failed} failed; run the lane again to redo only those")
    return {"lane": lane, "generated": generated}


class DeploymentLanes:
    """Starts one `generate` flow run per lane (idempotent per run and lane) and reports each
    chosen shard once it is sealed, or as failed once its lane's run has ended without it."""

    def __init__(
        self,
        work: ShardWork,
        chosen: list[int],
        run_id: str,
        lanes: int,
        queues: list[str] | None = None,
        deployment: str = defaults.LANE_DEPLOYMENT,
    ):
        self.rundir, self.shards, self.n = work.rundir, work.shards, work.sampling["n"]
        self.waiting = {s: lane_of(s, lanes) for s in chosen}
        self.flow_runs: dict[int, Any] = {}
        self.logger = get_run_logger()
        queue_names = queues or [None]
        for lane in range(lanes):
            own = {s: work.shards[s] for s in range(len(work.shards)) if lane_of(s, lanes) == lane}
            if not own:
                continue
            run = self._start(
                deployment,
                parameters=dict(
                    run_root=str(work.rundir.root),
                    lane=lane,
                    lanes=lanes,
                    shards=own,
                    dataset=work.dataset,
                    dataset_fingerprint=work.dataset_fingerprint,
                    model=work.model,
                    sampling=work.sampling,
                ),
                timeout=0,
                idempotency_key=f"{run_id}:lane{lane}",
                work_queue_name=queue_names[lane % len(queue_names)],
                job_variables={"env": lane_env(lane, lanes, len(queue_names))},
            )
            # The same key finds the lane's earlier run; one that has ended with shards still
            # missing (it failed, or they were invalidated since) runs again.
            if run.state is not None and run.state.is_final() and self._missing(lane):
                with get_client(sync_client=True) as client:
                    client.set_flow_run_state(run.id, Scheduled(), force=True)
            self.flow_runs[lane] = run.id
            self.logger.info("generation lane %s: flow run %s (%s)", lane, run.name, run.id)
        self.first_poll = True
        self.next_seal_check = self.next_state_check = 0.0
        self.next_wait_log = time.monotonic() + WAIT_LOG_S

    @staticmethod
    def _start(deployment: str, **kwargs: Any) -> Any:
        try:
            return run_deployment(deployment, **kwargs)
        except ObjectNotFound:
            raise ClusterError(
                f"no deployment '{deployment}' for the generation lanes: create it from the repository root with "
                "`prefect --no-prompt deploy --name generate` (prefect.yaml), on a GPU work pool with workers"
            ) from None

    def _sealed(self, shard_id: int) -> dict[str, Any] | None:
        return self.rundir.sealed(GENERATIONS, shard_id, shard_content(self.shards[shard_id], self.n))

    def _missing(self, lane: int) -> list[int]:
        return [s for s, owner in self.waiting.items() if owner == lane and self._sealed(s) is None]

    def poll(self, timeout: float) -> list[Finished]:
        now = time.monotonic()
        finished: list[Finished] = []
        if now >= self.next_seal_check:
            self.next_seal_check = now + defaults.LANE_POLL_S
            finished += self._newly_sealed()
        if self.waiting and now >= self.next_state_check:
            self.next_state_check = now + defaults.LANE_STATE_POLL_S
            finished += self._ended_lanes()
        if self.waiting and now >= self.next_wait_log:
            self.next_wait_log = now + WAIT_LOG_S
            self.logger.info("waiting for generation lanes %s", sorted(set(self.waiting.values())))
        if not finished:
            time.sleep(min(timeout, max(0.0, self.next_seal_check - time.monotonic())))
        return finished

    def _newly_sealed(self) -> list[Finished]:
        """The first look checks every shard (some were sealed before); after that, only each
        lane's lowest waiting shard can be next, as a lane generates its shards in order."""
        found = []
        while True:
            candidates = sorted(self.waiting) if self.first_poll else self._lowest_per_lane()
            self.first_poll = False
            sealed = [(s, self._sealed(s)) for s in candidates]
            sealed = [(s, record) for s, record in sealed if record is not None]
            if not sealed:
                return found
            for s, record in sealed:
                del self.waiting[s]
                found.append((s, record, None))

    def _lowest_per_lane(self) -> list[int]:
        lowest: dict[int, int] = {}
        for s, lane in sorted(self.waiting.items(), reverse=True):
            lowest[lane] = s
        return sorted(lowest.values())

    def _ended_lanes(self) -> list[Finished]:
        """Shards of lanes whose flow run has ended: sealed after all, or failed."""
        found = []
        with get_client(sync_client=True) as client:
            for lane in sorted(set(self.waiting.values())):
                state = client.read_flow_run(self.flow_runs[lane]).state
                if state is None or not state.is_final():
                    continue
                for s in [s for s, owner in self.waiting.items() if owner == lane]:
                    record = self._sealed(s)
                    if record is None:
                        self.logger.error("generation lane %s ended %s without shard %s", lane, state.name, s)
                    del self.waiting[s]
                    found.append((s, record, None))
        return found
