"""Shared by the scale-out tests (marked `server`): one Prefect server (tests/conftest.py), one
Dask cluster (`dask scheduler` and two `dask worker` processes on localhost), one small dataset
on which the tiny model's one-token programs get a mix of verdicts, and one local run of it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.scale.runs import quiet_rows, run, run_cmd
from tests.servers import REPO, free_port, spawn, stop

DASK = [sys.executable, "-m", "dask"]


@pytest.fixture(scope="session")
def dask_cluster(prefect_server, tmp_path_factory):
    """(scheduler address, its environment): workers as a user starts them, non-daemonic, with
    the session's Prefect API and a verdict cache of their own (so they really judge). They start
    in the background; `wait_for_workers` before using them."""
    home = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {
        **prefect_server,
        "PYTHONPATH": str(REPO),
        "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
        "TACO_EVAL_VERDICT_CACHE": str(home / "verdicts.sqlite"),
    }
    port = address.rsplit(":", 1)[1]
    procs = [spawn(DASK + ["scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"], env, home / "s.log")]
    try:
        for i in range(2):
            cmd = DASK + ["worker", address, "--nthreads", "1", "--no-dashboard", "--name", f"w{i}"]
            procs.append(spawn(cmd, env, home / f"w{i}.log"))
        yield address, env
    finally:
        for proc in reversed(procs):
            stop(proc)


@pytest.fixture(scope="session")
def quiet_dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("quiet") / "quiet.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in quiet_rows()))
    return path


@pytest.fixture(scope="session")
def local_run(prefect_server, tiny_model_dir, quiet_dataset, tmp_path_factory) -> Path:
    """The reference: the same run on this machine alone; its run folder."""
    out = tmp_path_factory.mktemp("local-run")
    env = {**prefect_server, "TACO_EVAL_VERDICT_CACHE": str(out / "verdicts.sqlite")}
    summary = run(run_cmd(tiny_model_dir, quiet_dataset, out / "out"), env)
    run_dir = Path(summary["run_dir"])
    taco = json.loads((run_dir / "taco_metrics.json").read_text())
    # The dataset does its job: some programs pass, not all (else equal metrics would prove little).
    assert 0 < taco["pass@1"] < 1, taco
    return run_dir
