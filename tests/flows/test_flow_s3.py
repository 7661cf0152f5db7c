"""The `taco-eval` flow with its output root on S3 (moto's server standing in, tests/s3_server.py):
a run killed mid-flight and resumed regenerates no finished shard and ends with the same numbers
as a local run; a failed shard is re-run by `prefect flow-run retry` from results kept on S3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from storage.fs import location
from storage.rundir import GENERATIONS, RESULTS, RunDir
from tests import s3_server as moto_s3
from tests.flows.test_flow import REPO, _taco_eval_flow_runs, executed, flow_params, task_runs


def run_cmd(model_dir, out):
    return [sys.executable, "-m", "taco_eval", "run", "-d", "samples", "--limit", "8", "--shard-size", "2",
            "-m", str(model_dir), "-n", "2", "--temperature", "0", "--max-tokens", "12", "-b", "4",
            "--workers", "1", "--k", "1,2", "--timeout", "2", "--json", "-o", out]  # fmt: skip


def test_s3_run_killed_and_resumed_keeps_finished_shards(prefect_api, tiny_model_dir, tmp_path, s3_server):
    from flows.taco_eval import taco_eval_flow

    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    bucket = moto_s3.new_bucket(dict(os.environ), versioned=True)
    # Kill once the first shard's results are sealed; the tiny model's programs run so fast that
    # the others may be sealed within the same moment: then try again under a new prefix.
    for attempt in range(3):
        out = f"{bucket}/nightly{attempt}"
        cmd = run_cmd(tiny_model_dir, out)
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.time() + 300
        while time.time() < deadline and not location(out).glob("runs/*/results/shard-00000.json"):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        (run_root,) = location(out).glob("runs/*")
        rd = RunDir(run_root)
        unfinished_gen = [k for k in range(4) if rd.sealed(GENERATIONS, k) is None]
        unfinished_exec = [k for k in range(4) if rd.sealed(RESULTS, k) is None]
        if 0 < len(unfinished_exec) < 4:  # killed mid-flight
            break
    assert 0 < len(unfinished_exec) < 4, "the run was never killed mid-flight"
    assert rd.lock.exists()  # the killed run's lease is still there
    finished = [(kind, k) for kind in (GENERATIONS, RESULTS) for k in range(4) if rd.sealed(kind, k) is not None]
    keys = [str(p)[len("s3://") :].partition("/")[2] for kind, k in finished
            for p in (rd.shard(kind, k), rd.shard(kind, k).with_suffix(".json"))]  # fmt: skip
    before = moto_s3.versions(dict(os.environ), str(run_root))

    resumed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout)
    assert summary["run_dir"] == str(run_root) and summary["report_html"] == str(rd.report_html)
    runs = task_runs(_taco_eval_flow_runs()[-1], 8)
    assert set(executed(runs, "generate-shard")) >= {f"generate-shard-{k}" for k in unfinished_gen}
    assert set(executed(runs, "execute-shard")) >= {f"execute-shard-{k}" for k in unfinished_exec}
    # No finished shard was written again: each of its objects still has its one and only version.
    after = moto_s3.versions(dict(os.environ), str(run_root))
    assert {k: after[k] for k in keys} == {k: before[k] for k in keys} and all(len(before[k]) == 1 for k in keys)
    assert all(rd.sealed(kind, k) is not None for kind in (GENERATIONS, RESULTS) for k in range(4))
    assert not rd.lock.exists()  # released at the end
    for name in ("manifest.json", "metrics.json", "report.md", "report.html"):
        assert (rd.root / name).is_file(), name
    assert rd.plots.glob("*.png")
    assert [e["run_id"] for e in json.loads("[" + ",".join(
        (location(out) / "run-index.jsonl").read_text().splitlines()) + "]")] == [run_root.name]  # fmt: skip
    assert (location(out) / ".prefect-results").glob("*"), "Prefect's results live under the run storage"

    # The same numbers as an uninterrupted local run of the same parameters (the same run id).
    local = taco_eval_flow(**flow_params(tiny_model_dir, tmp_path / "local", limit=8), return_state=True).result()
    local_dir = location(local["run_dir"])
    assert local_dir.name == run_root.name
    assert (local_dir / "taco_metrics.json").read_text() == rd.taco_metrics.read_text()


def test_s3_failed_shard_is_rerun_by_prefect_retry(prefect_api, tiny_model_dir, s3_bucket, s3_server):
    """As tests/flows/test_flow.py's local retry test, with the fault in the store: S3 refuses the
    write of shard 1's results (403, as a bucket policy would) until the retry."""
    from flows.taco_eval import taco_eval_flow

    params = flow_params(tiny_model_dir, f"{s3_bucket}/out")
    ok = taco_eval_flow(**{**params, "shard_ids": [0]}, return_state=True).result()
    rd = RunDir(ok["run_dir"])
    moto_s3.deny_writes(s3_server, f"/{rd.shard(RESULTS, 1).path.partition('/')[2]}")
    state = taco_eval_flow(**params, return_state=True)
    assert state.is_failed() and "[1]" in state.message
    assert rd.sealed(RESULTS, 2) is not None and rd.sealed(RESULTS, 1) is None
    assert json.loads(rd.metrics.read_text())["num_problems"] == 4  # shards 0 and 2

    moto_s3.allow_writes(s3_server)
    flow_run_id = str(state.state_details.flow_run_id)
    retry = subprocess.run(
        [sys.executable, "-m", "prefect", "flow-run", "retry", flow_run_id, "--entrypoint",
         "flows.taco_eval:taco_eval_flow"],
        cwd=REPO, env={**os.environ, "PREFECT_API_URL": prefect_api}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert retry.returncode == 0, retry.stdout[-3000:] + retry.stderr[-3000:]
    latest = {}
    for r in sorted(task_runs(flow_run_id, 12), key=lambda r: r.start_time or r.expected_start_time):
        latest[r.name] = r.state.name
    # The cache records Prefect keeps under s3://…/.prefect-results brought the rest back as Cached.
    assert latest["execute-shard-1"] == "Completed"
    assert latest["generate-shard-0"] == "Cached" and latest["execute-shard-2"] == "Cached"
    assert json.loads(rd.metrics.read_text())["num_problems"] == 6
