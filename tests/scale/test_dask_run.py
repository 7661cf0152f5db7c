"""`taco-eval run --dask-address`: execute-shard tasks on a `dask scheduler` with two `dask worker`
processes, one Prefect server for all; the run ends as a local run does, although a worker is
killed with SIGKILL in the middle of a shard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.scale.runs import run_cmd, verdict_rows, wait_for_workers
from tests.servers import REPO

pytestmark = pytest.mark.server


def test_run_on_dask_with_a_worker_killed_mid_shard_ends_as_a_local_run(
    dask_cluster, local_run, tiny_model_dir, quiet_dataset, tmp_path
):
    from distributed import Client

    address, env = dask_cluster
    workers = wait_for_workers(address)
    cmd = run_cmd(tiny_model_dir, quiet_dataset, tmp_path / "out", "--dask-address", address)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    with Client(address, timeout=30, set_as_default=False) as client:
        # The moment a worker holds a shard, kill its process with SIGKILL (its nanny starts a new
        # one); Dask gives the shard to a live worker.
        deadline = time.time() + 300
        while killed is None and proc.poll() is None and time.time() < deadline:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed = busy[0]
            time.sleep(0.005)
        out, err = proc.communicate(timeout=600)
        workers |= set(client.scheduler_info()["workers"])  # the restarted one has a new address
    assert killed is not None, "no shard was ever seen running on a worker"
    assert proc.returncode == 0, out[-3000:] + err[-5000:]
    run_dir = Path(json.loads(out)["run_dir"])
    assert run_dir.name == local_run.name  # where execution runs is not part of the run id
    assert (run_dir / "taco_metrics.json").read_text() == (local_run / "taco_metrics.json").read_text()
    assert verdict_rows(run_dir) == verdict_rows(local_run)
    # Every shard was judged on a Dask worker, which really ran programs (their verdict cache
    # began empty), and the manifest says which.
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["failed_shards"] == [] and len(manifest["completed_shards"]) == 4
    assert manifest["dask"] == {"address": address, "workers": None}
    shards = manifest["shards"].values()
    assert {s["execution"]["dask_worker"] for s in shards} <= workers
    assert sum(s["execution"]["programs_executed"] for s in shards) > 0
