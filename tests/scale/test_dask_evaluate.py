"""`taco-eval evaluate --dask-workers`: problems spread over a local Dask cluster (no Prefect), the
same verdicts as a local evaluation; and the checks that refuse a cluster that cannot work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.servers import REPO

DATA = Path(__file__).resolve().parents[1] / "data"

pytestmark = pytest.mark.server


def evaluate(*args):
    res = subprocess.run(
        [sys.executable, "-m", "taco_eval", "evaluate", *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-5000:]
    return res


def test_evaluate_on_a_dask_cluster_gives_the_local_verdicts(tmp_path):
    ref = json.loads((DATA / "sample_reference_generations.json").read_text())
    wrong = json.loads((DATA / "sample_wrong_generations.json").read_text())
    mixed = [{"task_id": r["task_id"], "output": r["output"] + w["output"] + ["print("]} for r, w in zip(ref, wrong)]
    gens = tmp_path / "g.json"
    gens.write_text(json.dumps(mixed))
    common = ["-g", str(gens), "--no-cache", "--k", "1,2"]
    evaluate(*common, "-o", str(tmp_path / "local"))
    spread = evaluate(*common, "-o", str(tmp_path / "dask"), "--dask-workers", "2")
    assert "judged" in spread.stdout

    def rows(folder):
        table = pq.read_table(tmp_path / folder / "results.parquet").to_pylist()
        return [{k: v for k, v in r.items() if k != "runtime_ms"} for r in table]

    assert rows("dask") == rows("local")
    assert {r["status"] for r in rows("dask")} == {"passed", "wrong_answer", "compile_error"}
    local, spread = ((tmp_path / f / "taco_metrics.json").read_text() for f in ("local", "dask"))
    assert spread == local
    assert json.loads((tmp_path / "dask" / "manifest.json").read_text())["config"]["dask_workers"] == 2


def test_a_daemonic_worker_is_refused_with_the_fix():
    import dask
    import distributed

    from tasks.execution import dask_cluster

    with dask.config.set({dask_cluster.DAEMON_KEY: True}):
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, pytest.raises(dask_cluster.ClusterError) as err:
        with dask_cluster.connect(cluster.scheduler_address):
            pass
    assert "daemonic" in str(err.value) and "DASK_DISTRIBUTED__WORKER__DAEMON=False" in str(err.value)


def test_an_existing_cluster_without_a_prefect_server_is_refused_before_anything_runs(tiny_model_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "home")
    res = subprocess.run(
        [sys.executable, "-m", "taco_eval", "run", "-m", str(tiny_model_dir), "--dask-address", "tcp://127.0.0.1:9"]
        + ["-o", str(tmp_path / "o")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 1
    assert "PREFECT_API_URL" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists()
