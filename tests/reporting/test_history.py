"""Run index (atomic appends, torn lines) and `taco-eval history` (ordering, filters, chart)."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from storage.run_index import INDEX_NAME, append_run, entry_for_run, previous_run, read_index
from taco_eval.cli import main
from tasks.reporting.history import history_entries, history_rows, write_history
from tests.reporting.test_report import make_problems, make_run


def entry(run_id, finished_at, p1, p10=None, model="m", deployment="taco-eval/nightly", **extra):
    values = {"pass@1": p1}
    if p10 is not None:
        values["pass@10"] = p10
    return {
        "run_id": run_id,
        "finished_at": finished_at,
        "model": model,
        "deployment": deployment,
        "dataset": "BAAI/TACO:test",
        "num_problems": 100,
        "pass_at_k": values,
        "run_dir": f"/runs/{run_id}",
        **extra,
    }


def test_entry_for_a_real_run_folder(tmp_path):
    run = make_run(
        tmp_path / "out" / "runs" / "abc", {0: 2, 1: 0, 2: 1}, problems=make_problems(3), run_id="abc", model="ckpt"
    )
    e = entry_for_run(run, deployment="taco-eval/nightly", finished_at="2026-01-02T03:04:05+00:00")
    metrics = json.loads((run / "metrics.json").read_text())
    assert e["run_id"] == "abc" and e["model"] == "ckpt" and e["deployment"] == "taco-eval/nightly"
    assert e["dataset"] == "synthetic-nonexistent.jsonl:test" and e["dataset_fingerprint"] == "fp-synthetic"
    assert e["pass_at_k"] == {"pass@1": metrics["pass@1"], "pass@2": metrics["pass@2"]}
    assert e["run_dir"] == str(run.resolve()) and e["num_problems"] == 3
    flat = make_run(tmp_path / "flat", {0: 1}, problems=make_problems(1), layout="flat")
    assert entry_for_run(flat)["run_id"] == "flat" and entry_for_run(flat)["model"] is None


def test_history_is_ordered_by_finish_time_not_append_order(tmp_path):
    # Appended out of order (a slow run finishing after a later-started one; a clock in another zone).
    append_run(tmp_path, entry("c", "2026-03-03T01:00:00+00:00", 0.30, 0.50))
    append_run(tmp_path, entry("a", "2026-03-01T01:00:00+00:00", 0.20, 0.40))
    append_run(tmp_path, entry("b", "2026-03-02T03:00:00+02:00", 0.25, 0.45))  # 01:00 UTC
    append_run(tmp_path, entry("x", "2026-03-02T12:00:00Z", 0.90, model="other", deployment=None))
    assert [e["run_id"] for e in read_index(tmp_path)] == ["c", "a", "b", "x"]
    assert [e["run_id"] for e in history_entries(tmp_path)] == ["a", "b", "x", "c"]
    ordered = history_entries(tmp_path, model="m")
    rows = history_rows(ordered, (1, 10))
    assert [r["run_id"] for r in rows] == ["a", "b", "c"]
    assert [r["pass@1"] for r in rows] == [0.2, 0.25, 0.3]
    assert rows[0]["Δ pass@1"] is None and rows[1]["Δ pass@1"] == pytest.approx(0.05)
    assert rows[2]["pass@10"] == 0.5


def test_previous_run_is_the_latest_of_the_same_deployment_and_model(tmp_path):
    assert previous_run(tmp_path, "taco-eval/nightly", "m") is None
    append_run(tmp_path, entry("new", "2026-03-05T01:00:00+00:00", 0.3))
    append_run(tmp_path, entry("old", "2026-03-04T01:00:00+00:00", 0.2))
    append_run(tmp_path, entry("adhoc", "2026-03-06T01:00:00+00:00", 0.1, deployment=None))
    append_run(tmp_path, entry("other-model", "2026-03-07T01:00:00+00:00", 0.1, model="m2"))
    assert previous_run(tmp_path, "taco-eval/nightly", "m")["run_id"] == "new"
    assert previous_run(tmp_path, "taco-eval/nightly", None)["run_id"] == "other-model"
    assert previous_run(tmp_path, None, "m")["run_id"] == "adhoc"
    assert previous_run(tmp_path, "taco-eval/nightly", "m", exclude_run_id="new")["run_id"] == "old"
    assert previous_run(tmp_path, "taco-eval/nightly", "m", before="2026-03-05T00:00:00Z")["run_id"] == "old"
    assert previous_run(tmp_path, "taco-eval/nightly", "m", dataset="other:test") is None


def test_torn_last_line_is_skipped_and_the_next_append_starts_clean(tmp_path):
    append_run(tmp_path, entry("a", "2026-03-01T01:00:00+00:00", 0.2))
    with open(tmp_path / INDEX_NAME, "a") as fh:
        fh.write('{"run_id": "half", "finished_at": "2026-03-0')  # a writer killed mid-line
    assert [e["run_id"] for e in read_index(tmp_path)] == ["a"]
    append_run(tmp_path, entry("b", "2026-03-02T01:00:00+00:00", 0.3))
    assert [e["run_id"] for e in read_index(tmp_path)] == ["a", "b"]
    with pytest.raises(ValueError, match="lacks"):
        append_run(tmp_path, {"run_id": "no-dir"})


def _append_many(args):
    root, worker = args
    for i in range(25):
        append_run(root, entry(f"w{worker}-{i}", "2026-03-01T01:00:00+00:00", 0.1, note="x" * 3000))


def test_concurrent_appends_never_interleave(tmp_path):
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_append_many, [(str(tmp_path), w) for w in range(4)])
    lines = (tmp_path / INDEX_NAME).read_text().splitlines()
    assert len(lines) == 100 and all(json.loads(line)["note"] == "x" * 3000 for line in lines)


def test_history_command_writes_table_and_chart(tmp_path, capsys):
    for day, (p1, p10) in enumerate([(0.20, 0.41), (0.22, 0.44), (0.19, 0.40)], start=1):
        append_run(tmp_path, entry(f"r{day}", f"2026-03-0{day}T01:00:00+00:00", p1, p10))
    append_run(tmp_path, entry("o1", "2026-03-02T05:00:00+00:00", 0.5, 0.7, model="other"))
    assert main(["history", "-o", str(tmp_path), "--model", "m"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["finished", "(UTC)"] and "pass@10" in out[0]
    assert [line.split()[1] for line in out[1:4]] == ["r1", "r2", "r3"]
    assert "22.0%" in out[2] and "+2.0 pp" in out[2] and "-3.0 pp" in out[3]
    png = tmp_path / "history-m.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "![pass@k over time](history-m.png)" in (tmp_path / "history-m.md").read_text()
    assert main(["history", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "history.png").exists()
    assert "o1" in capsys.readouterr().out


def test_history_command_errors(tmp_path, capsys):
    assert main(["history", "-o", str(tmp_path)]) == 2
    assert "no run index" in capsys.readouterr().err
    append_run(tmp_path, entry("a", "2026-03-01T01:00:00+00:00", 0.2))
    assert main(["history", "-o", str(tmp_path), "--model", "nope"]) == 2
    assert "no finished runs match" in capsys.readouterr().err


def test_write_history_last_n(tmp_path):
    for day in range(1, 6):
        append_run(tmp_path, entry(f"r{day}", f"2026-03-0{day}T01:00:00+00:00", 0.1 * day))
    paths = write_history(tmp_path, last=2, ks=(1,))
    assert [r["run_id"] for r in paths.rows] == ["r4", "r5"]
    assert paths.rows[0]["Δ pass@1"] == pytest.approx(0.1)  # still relative to r3
