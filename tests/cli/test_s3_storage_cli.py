"""`taco-eval evaluate`, `report` and `history` with S3 locations (moto's server standing in,
tests/s3_server.py), through the real console entry point: the same numbers as on local folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from storage.fs import location
from storage.tables import read_rows

DATA = Path(__file__).resolve().parents[1] / "data"


def taco_eval(*args):
    return subprocess.run([sys.executable, "-m", "taco_eval", *args], capture_output=True, text=True, timeout=300)


def test_evaluate_report_and_history_on_s3(s3_bucket, tmp_path):
    # Generations from S3 too: a mix of right and wrong programs, for a fractional pass@k.
    ref = json.loads((DATA / "sample_reference_generations.json").read_text())
    wrong = json.loads((DATA / "sample_wrong_generations.json").read_text())
    mixed = json.dumps([{"task_id": r["task_id"], "output": r["output"] + w["output"]} for r, w in zip(ref, wrong)])
    (tmp_path / "g.json").write_text(mixed)
    gens = location(s3_bucket) / "in" / "generations.json"
    gens.write_bytes(mixed.encode())
    common = ["--task-ids", "0,1,2,3,4,5", "--k", "1,2", "--workers", "1", "--no-cache"]

    remote = f"{s3_bucket}/eval"
    on_s3 = taco_eval("evaluate", "-g", str(gens), "-o", remote, *common)
    assert on_s3.returncode == 0, on_s3.stderr
    assert f"{remote}/results.parquet" in on_s3.stdout
    local = taco_eval("evaluate", "-g", str(tmp_path / "g.json"), "-o", str(tmp_path / "eval"), *common)
    assert local.returncode == 0, local.stderr
    out = location(remote)
    for name in ("taco_metrics.json", "metrics.json"):
        assert (out / name).read_text() == (tmp_path / "eval" / name).read_text(), name
    verdicts = [(r["task_id"], r["sample_idx"], r["status"]) for r in read_rows(out / "results.parquet")]
    assert verdicts == [
        (r["task_id"], r["sample_idx"], r["status"]) for r in read_rows(tmp_path / "eval" / "results.parquet")
    ]
    assert 0 < json.loads((out / "taco_metrics.json").read_text())["pass@1"] < 1

    # The report reads the S3 folder and writes report.md, a self-contained report.html and plots there.
    report = taco_eval("report", remote, "--add-to-index", f"{s3_bucket}/history")
    assert report.returncode == 0, report.stderr
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') >= 2
    pngs = [p.name for p in (out / "plots").glob("*.png")]
    assert pngs and all((out / "plots" / name).read_bytes().startswith(b"\x89PNG") for name in pngs)
    assert f"](plots/{pngs[0]})" in (out / "report.md").read_text()

    history = taco_eval("history", "-o", f"{s3_bucket}/history")
    assert history.returncode == 0, history.stderr
    assert (location(s3_bucket) / "history" / "history.md").is_file()


def test_unreachable_s3_output_is_one_line_usage_error(s3_bucket):
    res = taco_eval("evaluate", "-g", str(DATA / "sample_reference_generations.json"), "-o", "s3://no-such-bucket/x")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "taco-eval evaluate: error: -o s3://no-such-bucket/x: s3://no-such-bucket does not exist (create the bucket first)"
    ]
