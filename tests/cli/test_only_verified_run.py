"""`taco-eval run --dataset-check … [--only-verified]` end to end with the tiny model: the flow
generates and scores only the usable problems, the run id changes only when the problem set does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from tests.dataset_check.planted import USABLE, write_checked

REPO = Path(__file__).resolve().parents[2]


def test_only_verified_through_run(prefect_api, tiny_model_dir, tmp_path):
    data, check = write_checked(tmp_path)
    out = tmp_path / "out"

    def run(*extra):
        cmd = [sys.executable, "-m", "taco_eval", "run", "-d", str(data), "--shard-size", "4",
               "-m", str(tiny_model_dir), "-n", "1", "--temperature", "0", "--max-tokens", "8", "-b", "4",
               "--workers", "1", "--k", "1", "--timeout", "2", "-o", str(out), "--json", *extra]  # fmt: skip
        proc = subprocess.run(
            cmd, cwd=REPO, env={**os.environ, "PREFECT_API_URL": prefect_api}, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    checked = run("--dataset-check", str(check))
    # Every problem is generated; TACO's file covers all scored ones, the verified block the usable.
    checked_dir = Path(checked["run_dir"])
    assert len(json.loads((checked_dir / "taco_metrics.json").read_text())["detail"]["pass@1"]) == 7
    assert json.loads((checked_dir / "metrics.json").read_text())["verified"]["num_problems"] == 3
    plain = run()
    only = run("--dataset-check", str(check / "dataset_check.parquet"), "--only-verified")

    # Adding the check changes no generation or verdict: the same run (its shards come back cached).
    assert checked["run_id"] == plain["run_id"] and only["run_id"] != plain["run_id"]

    only_dir = Path(only["run_dir"])
    generated = {
        r["task_id"] for p in (only_dir / "generations").glob("*.parquet") for r in pq.read_table(p).to_pylist()
    }
    judged = {r["task_id"] for p in (only_dir / "results").glob("*.parquet") for r in pq.read_table(p).to_pylist()}
    assert generated == judged == set(USABLE)
    taco = json.loads((only_dir / "taco_metrics.json").read_text())
    assert sorted(int(t) for t in taco["detail"]["pass@1"]) == USABLE
    metrics = json.loads((only_dir / "metrics.json").read_text())
    assert metrics["num_problems"] == 3
    assert metrics["verified"]["excluded_task_ids"] == {"broken": [1, 2], "no_solutions": [3], "skipped": [4, 6]}
    assert metrics["verified"]["dataset_check"]["only_verified"] is True
    manifest = json.loads((only_dir / "manifest.json").read_text())
    assert manifest["config"]["dataset"]["task_ids"] == USABLE and manifest["dataset_check"]["usable_problems"] == 3
    assert "## pass@k over verified problems (dataset check)" in (only_dir / "report.md").read_text()
