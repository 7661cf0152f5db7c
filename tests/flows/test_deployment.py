"""The user's path: `prefect server start`, a process work pool, `prefect deploy --all`,
`prefect worker start`, `prefect deployment run taco-eval/on-demand`. Marked `server`."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.servers import PREFECT, REPO, prefect, stop

pytestmark = pytest.mark.server


def test_deployment_run_through_a_process_worker(prefect_server, tiny_model_dir, tmp_path):
    env = prefect_server
    for pool in ("taco-eval", "taco-eval-gpu"):  # every pool prefect.yaml names must exist
        prefect(env, "work-pool", "create", pool, "--type", "process", "--overwrite")
    out = prefect(env, "--no-prompt", "deploy", "--all")
    assert "taco-eval/on-demand" in out and "taco-eval/nightly" in out
    assert "taco-eval-check/dataset-check" in out
    worker = subprocess.Popen(
        PREFECT + ["worker", "start", "--pool", "taco-eval"],
        cwd=REPO,
        env=env,
        stdout=open(tmp_path / "worker.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out_dir = tmp_path / "out"
        params = {
            "model": str(tiny_model_dir),
            "limit": 4,
            "shard_size": 2,
            "n": 2,
            "temperature": 0.0,
            "max_tokens": 8,
            "batch_size": "4",
            "workers": 1,
            "k": [1, 2],
            "output_dir": str(out_dir),
        }
        args = ["deployment", "run", "taco-eval/on-demand", "--watch", "--watch-timeout", "600"]
        for key, value in params.items():
            args += ["-p", f"{key}={json.dumps(value)}"]
        text = prefect(env, *args, timeout=660)
        assert "Completed" in text, text[-2000:]
        run_dir = next(out_dir.glob("runs/*"))
        for name in ("manifest.json", "metrics.json", "taco_metrics.json", "report.md"):
            assert (run_dir / name).exists(), name
        assert len(list((run_dir / "results").glob("shard-*.parquet"))) == 2

        # The nightly deployment's schedule produces scheduled runs (SQLAlchemy 2.1 would silently not).
        deadline = time.time() + 60
        while time.time() < deadline:
            listing = prefect(env, "flow-run", "ls", "--state", "SCHEDULED", "--limit", "20")
            if "SCHEDULED" in listing:
                break
            time.sleep(2)
        assert "SCHEDULED" in listing, listing[-2000:]
    finally:
        stop(worker)
