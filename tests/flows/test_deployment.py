"""The user's path: `prefect server start`, a process work pool, `prefect deploy --all`,
`prefect worker start`, `prefect deployment run taco-eval/on-demand`. Marked `server`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]

pytestmark = pytest.mark.server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"prefect server at {url} did not become healthy")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PWD": str(REPO),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
        "COLUMNS": "250",
    }
    proc = subprocess.Popen(
        PREFECT + ["server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=open(home / "server.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_healthy(api)
        yield env
    finally:
        _stop(proc)


def prefect(env, *args, timeout=300):
    res = subprocess.run(PREFECT + list(args), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"prefect {' '.join(args)}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def test_deployment_run_through_a_process_worker(server, tiny_model_dir, tmp_path):
    env = server
    prefect(env, "work-pool", "create", "taco-eval", "--type", "process")
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
        _stop(worker)
