"""Helpers of the scale-out tests: the quiet dataset, `taco-eval run` in a subprocess, verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.servers import REPO


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


def verdict_rows(run_dir: Path) -> list[dict]:
    """Every sample's verdict in a run folder (what a program's timing cannot change)."""
    from storage.tables import read_rows

    rows = [r for p in sorted((run_dir / "results").glob("shard-*.parquet")) for r in read_rows(p)]
    return [{k: v for k, v in r.items() if k not in ("runtime_ms", "cached")} for r in rows]
