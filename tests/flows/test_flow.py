"""The `taco-eval` flow on a real Prefect engine with a tiny local model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def flow_params(model_dir, out, **over):
    params = dict(
        dataset="samples",
        limit=6,
        shard_size=2,
        model=str(model_dir),
        n=2,
        temperature=0.0,
        max_tokens=12,
        batch_size="4",
        workers=1,
        k=[1, 2],
        output_dir=str(out),
        timeout=2.0,
    )
    params.update(over)
    return params


def task_runs(flow_run_id, shard_tasks, timeout=60.0):
    """The flow run's task runs, once the server has recorded `shard_tasks` generate/execute runs
    and none of them is still Running: task-run states reach the API through events, so right
    after a run ends they may lag behind (seen under load with SQLite)."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            return await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))

    deadline = time.time() + timeout
    while True:
        runs = asyncio.run(read())
        shard_runs = [r for r in runs if r.name.startswith(("generate-shard", "execute-shard"))]
        if (
            len(shard_runs) >= shard_tasks and all(r.state.name != "Running" for r in shard_runs)
        ) or time.time() > deadline:
            return runs
        time.sleep(0.25)


def executed(runs, prefix):
    """Task runs that did real work (Completed, not Cached)."""
    return sorted(r.name for r in runs if r.name.startswith(prefix) and r.state.name == "Completed")


def test_flow_overlaps_generation_and_execution_and_writes_the_run(prefect_api, tiny_model_dir, tmp_path):
    from flows.taco_eval import taco_eval_flow

    state = taco_eval_flow(**flow_params(tiny_model_dir, tmp_path), return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    run_dir = Path(summary["run_dir"])
    for name in ("manifest.json", "metrics.json", "taco_metrics.json", "report.md"):
        assert (run_dir / name).exists(), name
    assert sorted(p.name for p in (run_dir / "generations").glob("*.parquet")) == [
        "shard-00000.parquet",
        "shard-00001.parquet",
        "shard-00002.parquet",
    ]
    assert len(list((run_dir / "results").glob("*.parquet"))) == 3
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["isolation"] and manifest["environment"]["packages"]["prefect"]
    assert set(manifest["shards"]) == {"0", "1", "2"}
    assert manifest["shards"]["0"]["execution"]["tests_per_s"] >= 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_problems"] == 6 and metrics["num_samples"] == 12

    runs = {r.name: r for r in task_runs(state.state_details.flow_run_id, 6)}
    # Execution of shard 0 started before generation of the last shard ended.
    assert runs["execute-shard-0"].start_time < runs["generate-shard-2"].end_time

    again = taco_eval_flow(**flow_params(tiny_model_dir, tmp_path), return_state=True)
    assert again.result()["run_dir"] == str(run_dir)
    rerun = task_runs(again.state_details.flow_run_id, 6)
    assert executed(rerun, "generate-shard") == [] and executed(rerun, "execute-shard") == []
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics


def test_corrupt_shard_is_recomputed(prefect_api, tiny_model_dir, tmp_path):
    from flows.taco_eval import taco_eval_flow

    first = taco_eval_flow(**flow_params(tiny_model_dir, tmp_path, limit=4), return_state=True).result()
    run_dir = Path(first["run_dir"])
    shard = run_dir / "generations" / "shard-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:100])  # truncated
    (run_dir / "results" / "shard-00000.parquet").unlink()
    state = taco_eval_flow(**flow_params(tiny_model_dir, tmp_path, limit=4), return_state=True)
    runs = task_runs(state.state_details.flow_run_id, 4)
    assert executed(runs, "generate-shard") == ["generate-shard-1"]
    assert executed(runs, "execute-shard") == ["execute-shard-0", "execute-shard-1"]
    assert json.loads((run_dir / "metrics.json").read_text())["num_samples"] == 8


def test_failed_shard_leaves_the_others_and_retry_completes(prefect_api, tiny_model_dir, tmp_path):
    from flows.taco_eval import taco_eval_flow

    params = flow_params(tiny_model_dir, tmp_path)
    # Learn the run folder, then block shard 1's results file with a directory of the same name.
    ok = taco_eval_flow(**{**params, "shard_ids": [0]}, return_state=True).result()
    run_dir = Path(ok["run_dir"])
    blocker = run_dir / "results" / "shard-00001.parquet"
    blocker.mkdir(parents=True)
    (blocker / "x").write_text("in the way")
    state = taco_eval_flow(**params, return_state=True)
    assert state.is_failed()
    assert "[1]" in state.message
    assert (run_dir / "results" / "shard-00002.parquet").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_problems"] == 4  # shards 0 and 2

    for p in blocker.iterdir():
        p.unlink()
    blocker.rmdir()
    flow_run_id = str(state.state_details.flow_run_id)
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    retry = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefect",
            "flow-run",
            "retry",
            flow_run_id,
            "--entrypoint",
            "flows.taco_eval:taco_eval_flow",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert retry.returncode == 0, retry.stdout[-3000:] + retry.stderr[-3000:]
    runs = task_runs(flow_run_id, 12)  # both attempts of this flow run
    latest = {}
    for r in sorted(runs, key=lambda r: r.start_time or r.expected_start_time):
        latest[r.name] = r.state.name
    assert latest["execute-shard-1"] == "Completed"
    assert latest["generate-shard-0"] == "Cached" and latest["execute-shard-2"] == "Cached"
    assert json.loads((run_dir / "metrics.json").read_text())["num_problems"] == 6


def test_killed_run_resumes_without_redoing_finished_shards(prefect_api, tiny_model_dir, tmp_path):
    def run_cmd(out):
        return [
            sys.executable,
            "-m",
            "taco_eval",
            "run",
            "-d",
            "samples",
            "--limit",
            "8",
            "--shard-size",
            "2",
            "-m",
            str(tiny_model_dir),
            "-n",
            "2",
            "--temperature",
            "0",
            "--max-tokens",
            "96",  # with -b 1, each shard's generation takes a while: the kill can land between shards
            "-b",
            "1",
            "--workers",
            "1",
            "--k",
            "1,2",
            "--timeout",
            "2",
            "--no-cache",  # each attempt below really executes (a verdict cache would make it instant)
            "-o",
            str(out),
        ]

    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    from storage.rundir import GENERATIONS, RESULTS, RunDir

    # Kill once the first shard's results are sealed. On a warm pool the tiny model's programs are
    # judged in milliseconds, so the later shards are kept busy generating (one sequence at a
    # time, 96 tokens); if they are all sealed within the same moment anyway, try again.
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        cmd = run_cmd(out)
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.time() + 300
        while time.time() < deadline and not list(out.glob("runs/*/results/shard-00000.json")):
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        run_dir = next(out.glob("runs/*"))
        rd = RunDir(run_dir)
        unfinished_gen = [k for k in range(4) if rd.sealed(GENERATIONS, k) is None]
        unfinished_exec = [k for k in range(4) if rd.sealed(RESULTS, k) is None]
        if 0 < len(unfinished_exec) < 4:  # killed mid-flight
            break
    assert 0 < len(unfinished_exec) < 4, "the run was never killed mid-flight"
    finished = [(kind, k) for kind in (GENERATIONS, RESULTS) for k in range(4) if rd.sealed(kind, k) is not None]
    shard_files = [p for kind, k in finished for p in (rd.shard(kind, k), rd.shard(kind, k).with_suffix(".json"))]
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in shard_files}

    resumed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = task_runs(_taco_eval_flow_runs()[-1], 8)
    # Every unfinished shard ran again; a finished one may show as Completed only when the kill
    # came between its seal and Prefect's cache record: its task then returned the seal, and no
    # file of a finished shard was rewritten (atomic writes would give each a new inode).
    assert set(executed(runs, "generate-shard")) >= {f"generate-shard-{k}" for k in unfinished_gen}
    assert set(executed(runs, "execute-shard")) >= {f"execute-shard-{k}" for k in unfinished_exec}
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in shard_files} == before
    assert all(rd.sealed(kind, k) is not None for kind in (GENERATIONS, RESULTS) for k in range(4))
    # The same numbers as an uninterrupted run.
    fresh = subprocess.run(run_cmd(tmp_path / "fresh"), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    fresh_dir = next((tmp_path / "fresh").glob("runs/*"))
    assert fresh_dir.name == run_dir.name
    assert (fresh_dir / "taco_metrics.json").read_text() == (run_dir / "taco_metrics.json").read_text()


def _taco_eval_flow_runs():
    """Flow run ids of the `taco-eval` flow, oldest first (the newest is the resumed one)."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    async def read():
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["taco-eval"])), sort=FlowRunSort.START_TIME_ASC
            )
            return [r.id for r in runs if r.start_time is not None]

    return asyncio.run(read())


def test_cuda_out_of_memory_during_generation_through_the_flow(prefect_api, tiny_model_dir, tmp_path, fresh_backends):
    """A simulated CUDA OOM halves the batch inside the flow; the run completes with the same
    greedy generations and metrics as an undisturbed run."""
    import warnings

    from flows.taco_eval import taco_eval_flow
    from storage.tables import read_rows
    from tasks.generation.generate import ModelConfig, load_backend
    from tests.generation.test_generation import oom_when_rows_exceed

    params = dict(flow_params(tiny_model_dir, tmp_path / "calm"), batch_size="auto")
    calm = taco_eval_flow(**params, return_state=True).result()

    backend = load_backend(ModelConfig(str(tiny_model_dir)))
    ooms: list[int] = []
    oom_when_rows_exceed(backend.model, 1, ooms)  # greedy: one row per prompt, 2 prompts per shard
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stormy = taco_eval_flow(**{**params, "output_dir": str(tmp_path / "oom")}, return_state=True)
    assert stormy.is_completed(), stormy.message
    assert ooms, "the wrapped forward never ran out of memory"
    calm_dir, oom_dir = Path(calm["run_dir"]), Path(stormy.result()["run_dir"])
    for k in range(3):
        calm_rows = read_rows(calm_dir / "generations" / f"shard-{k:05d}.parquet")
        oom_rows = read_rows(oom_dir / "generations" / f"shard-{k:05d}.parquet")
        assert [r["code"] for r in oom_rows] == [r["code"] for r in calm_rows]
        assert {r["batch_size"] for r in oom_rows} == {1}
    assert (oom_dir / "taco_metrics.json").read_text() == (calm_dir / "taco_metrics.json").read_text()


def test_identical_runs_at_once_generate_each_shard_once_and_index_once(prefect_api, tiny_model_dir, tmp_path):
    from storage.run_index import read_index
    from storage.run_lock import run_lock
    from storage.rundir import RunDir

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "taco_eval", "run", "-d", "samples", "--limit", "4", "--shard-size", "2",
           "-m", str(tiny_model_dir), "-n", "2", "--temperature", "0", "--max-tokens", "12", "-b", "4",
           "--workers", "1", "--timeout", "2", "--no-cache", "-o", str(out), "--wait"]  # fmt: skip
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    flow_runs = _taco_eval_flow_runs()[-2:]
    generated = [r.name for fr in flow_runs for r in task_runs(fr, 4) if r.name.startswith("generate-shard")
                 and r.state.name == "Completed"]  # fmt: skip
    assert sorted(generated) == ["generate-shard-0", "generate-shard-1"]
    (run_dir,) = list(out.glob("runs/*"))
    assert [e["run_id"] for e in read_index(out)] == [run_dir.name]

    # Without --wait, a run that finds its run held stops at once with one line naming the holder.
    with run_lock(RunDir(run_dir).lock, wait=False):
        held = subprocess.run(cmd[:-1], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert held.returncode == 1
    assert "already running" in held.stderr and f"pid {os.getpid()}" in held.stderr
