"""The pure rules of scale-out: how problems are split for a cluster, how a worker's pool is
sized, which lane a shard belongs to and which device a lane gets."""

from __future__ import annotations

from tasks.execution.dask_cluster import problems_of, share_of_host, WorkerReport
from tasks.judging.evaluate import Sample
from tests.helpers import stdin_problem


def test_parts_hold_whole_problems_heaviest_first():
    from tasks.judging.spread import split_parts

    problems = {t: stdin_problem(["1"] * tests, ["1"] * tests, task_id=t) for t, tests in [(0, 1), (1, 5), (2, 2)]}
    samples = [Sample(t, i, "pass") for t in (0, 1, 2) for i in range(3)] + [Sample(9, 0, "pass")]  # 9: unknown
    parts = split_parts(problems, samples, min_samples=4)
    assert parts == [[1, 2], [0, 9]]  # weights 15, 6, 3, 0; a part closes once it holds >= 4 samples
    assert sorted(t for p in parts for t in p) == [0, 1, 2, 9]
    assert split_parts(problems, samples, min_samples=100) == [[1, 2, 0, 9]]


def test_a_worker_pool_gets_its_share_of_the_host():
    assert share_of_host(cores=16, threads_on_host=1) == 16
    assert share_of_host(cores=16, threads_on_host=4) == 4  # four single-threaded workers on one host
    assert share_of_host(cores=2, threads_on_host=3) == 1  # never zero


def test_problems_name_the_worker_and_the_fix():
    ok = WorkerReport(daemon=False, import_error=None, api_error=None)
    bad = WorkerReport(daemon=True, import_error="flows.shard_tasks: ModuleNotFoundError", api_error="refused")
    assert problems_of({"tcp://a:1": ok, "scheduler": ok}, "http://api") == []
    lines = problems_of({"tcp://b:2": bad}, "http://api")
    assert len(lines) == 3 and all(line.startswith("worker tcp://b:2") for line in lines)
    assert "DASK_DISTRIBUTED__WORKER__DAEMON=False" in lines[0] and "PYTHONPATH" in lines[1]
    assert "http://api" in lines[2] and "PREFECT_API_URL" in lines[2]


def test_shards_go_to_lanes_round_robin_and_lanes_to_queues_and_gpus():
    from flows.lanes import LANE_ENV, lane_env, lane_of

    assert [lane_of(s, 3) for s in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    # One lane per queue (one GPU per host): the worker's own CUDA_VISIBLE_DEVICES stays.
    assert lane_env(1, lanes=2, queues=2) == {LANE_ENV: "1"}
    # Two hosts with two GPUs each: lanes 0, 2 on host a (GPUs 0, 1), lanes 1, 3 on host b.
    assert [lane_env(i, lanes=4, queues=2)["CUDA_VISIBLE_DEVICES"] for i in range(4)] == ["0", "0", "1", "1"]
