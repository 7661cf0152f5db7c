"""Shared by the scale-out tests (marked `server`): one Prefect server (tests/conftest.py), one
Dask cluster (`dask scheduler` and two `dask worker` processes on localhost), one small dataset
on which the tiny model's one-token programs get a mix of verdicts, and one local run of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def wait_for_workers(address: str, count: int = 2) -> set[str]:
    """The workers' addresses, once `count` of them have joined the scheduler."""
    from distributed import Client

    with Client(address, timeout=60, set_as_default=False) as client:
        client.wait_for_workers(count, timeout=120)
        return set(client.scheduler_info()["workers"])


def quiet_rows(count: int = 8) -> list[dict]:
    """Problems whose tests expect no output: a one-token program that is a number or a keyword
    passes, a name is a runtime error, punctuation a compile error."""
    return [
        {
            "question": f"Problem {i}: print nothing.",
            "solutions": json.dumps(["pass"]),
            "starter_code": "",
            "input_output": json.dumps({"inputs": ["", "1\n"], "outputs": ["", ""]}),
            "difficulty": ("EASY", "MEDIUM", "HARD")[i % 3],
            "skill_types": "['Sorting']",
            "tags": "[]",
            "source": "test",
        }
        for i in range(count)
    ]


@pytest.fixture(scope="session")
def quiet_dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("quiet") / "quiet.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in quiet_rows()))
    return path


def run_cmd(model_dir, dataset, out, *extra) -> list[str]:
    """`taco-eval run` on the quiet dataset: 4 shards of 2 problems, 4 one-token samples each."""
    return [sys.executable, "-m", "taco_eval", "run", "-d", str(dataset), "--shard-size", "2",
            "-m", str(model_dir), "-n", "4", "--temperature", "1.0", "--max-tokens", "1",
            "--prompt-format", "chat", "-b", "8", "--k", "1,2", "--timeout", "2", "-o", str(out),
            "--json", *extra]  # fmt: skip


def run(cmd, env, timeout=600) -> dict:
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return json.loads(res.stdout)


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


def verdict_rows(run_dir: Path) -> list[dict]:
    """Every sample's verdict in a run folder (what a program's timing cannot change)."""
    from storage.tables import read_rows

    rows = [r for p in sorted((run_dir / "results").glob("shard-*.parquet")) for r in read_rows(p)]
    return [{k: v for k, v in r.items() if k not in ("runtime_ms", "cached")} for r in rows]
