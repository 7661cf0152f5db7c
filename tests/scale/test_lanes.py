"""`taco-eval run --lanes 2`: generation on two lanes of a GPU work pool (here two CPU "GPU" workers
of a process work pool, one queue each), shards handed over through the run folder; the run ends
as a local run does. Run again after a shard of lane 1 is lost, only lane 1 runs again, for it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from storage.rundir import GENERATIONS, RESULTS, RunDir
from tests.scale.runs import run, run_cmd, verdict_rows
from tests.servers import PREFECT, prefect, spawn, stop

pytestmark = pytest.mark.server

POOL = "taco-eval-gpu"
QUEUES = ("gpu-a", "gpu-b")


@pytest.fixture(scope="module")
def gpu_pool(prefect_server, tmp_path_factory):
    """The pool of prefect.yaml's `generate` deployment, one queue and one worker per "GPU host"."""
    logs = tmp_path_factory.mktemp("gpu-workers")
    env = {**prefect_server, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    prefect(env, "work-pool", "create", POOL, "--type", "process", "--overwrite")
    for queue in QUEUES:
        prefect(env, "work-queue", "create", queue, "--pool", POOL)
    assert "taco-eval-generate/generate" in prefect(env, "--no-prompt", "deploy", "--name", "generate")
    workers = [
        spawn(PREFECT + ["worker", "start", "--pool", POOL, "--work-queue", q], env, logs / f"{q}.log") for q in QUEUES
    ]
    try:
        yield env
    finally:
        for w in workers:
            stop(w)


def lane_runs(flow_run_ids: list[str]) -> dict[str, tuple]:
    """Per lane flow run: (its queue, how often it ran, the shards its task runs generated)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            found = {}
            for fid in flow_run_ids:
                fr = await client.read_flow_run(fid)
                tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])))
                shards = sorted(int(t.name.rsplit("-", 1)[1]) for t in tasks if t.state and t.state.is_completed())
                found[fid] = (fr.work_queue_name, fr.run_count, fr.state.name, shards)
            return found

    return asyncio.run(read())


def test_two_generation_lanes_end_as_a_local_run(gpu_pool, local_run, tiny_model_dir, quiet_dataset, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env = gpu_pool
    cmd = run_cmd(tiny_model_dir, quiet_dataset, tmp_path / "out", "--lanes", "2", "--lane-queues", ",".join(QUEUES))
    run_dir = Path(run(cmd, env)["run_dir"])
    assert run_dir.name == local_run.name
    assert (run_dir / "taco_metrics.json").read_text() == (local_run / "taco_metrics.json").read_text()
    assert verdict_rows(run_dir) == verdict_rows(local_run)
    lanes = json.loads((run_dir / "manifest.json").read_text())["generation_lanes"]
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        first = lane_runs([lanes["0"], lanes["1"]])
    # Shard i on lane i mod 2, each lane on its own queue, so on its own worker.
    assert first[lanes["0"]] == ("gpu-a", 1, "Completed", [0, 2])
    assert first[lanes["1"]] == ("gpu-b", 1, "Completed", [1, 3])

    # Lose shard 3 (lane 1's): the same command finds the same lane runs (idempotency keys) and
    # runs only lane 1 again, which generates only shard 3; no other shard file is touched.
    rd = RunDir(run_dir)
    rd.invalidate(GENERATIONS, 3)
    kept = [rd.shard(kind, k) for kind in (GENERATIONS, RESULTS) for k in range(4) if k != 3]
    before = {p: p.stat().st_mtime_ns for p in kept}
    again = Path(run(cmd, env)["run_dir"])
    assert json.loads((again / "manifest.json").read_text())["generation_lanes"] == lanes
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        second = lane_runs([lanes["0"], lanes["1"]])
    assert second[lanes["0"]] == first[lanes["0"]]
    assert second[lanes["1"]][:3] == ("gpu-b", 2, "Completed") and second[lanes["1"]][3] == [1, 3, 3]
    assert {p: p.stat().st_mtime_ns for p in kept} == before
    assert (again / "taco_metrics.json").read_text() == (local_run / "taco_metrics.json").read_text()
