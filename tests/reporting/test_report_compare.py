"""Run comparison: deltas per difficulty, newly solved / failing problems, noise; the `report` command."""

from __future__ import annotations

import json

import pytest

from taco_eval.cli import main
from tasks.reporting.compare import compare_runs
from tasks.reporting.rundata import load_run
from tests.reporting.test_report import make_problems, make_run

# 6 problems: difficulties EASY, MEDIUM, HARD, EASY, MEDIUM, HARD (task_id % 3); n = 4 samples.
BASELINE = {0: 4, 1: 2, 2: 0, 3: 1, 4: 0, 5: 3}
CURRENT = {0: 4, 1: 4, 2: 2, 3: 0, 4: 0, 5: 3}


@pytest.fixture
def two_runs(tmp_path):
    problems = make_problems(6)
    base = make_run(tmp_path / "runs" / "base", BASELINE, problems=problems, run_id="base", model="ckpt-1")
    cur = make_run(tmp_path / "runs" / "cur", CURRENT, problems=problems, run_id="cur", model="ckpt-2")
    return cur, base, problems


def test_deltas_per_difficulty_and_newly_solved_or_failing(two_runs):
    cur, base, problems = two_runs
    cmp = compare_runs(load_run(cur, problems=problems), load_run(base, problems=problems))
    assert cmp["current_run_id"] == "cur" and cmp["baseline_run_id"] == "base"
    assert cmp["ks"] == [1, 2] and cmp["common_problems"] == 6
    overall = cmp["overall"]["pass@1"]
    assert overall["baseline"] == pytest.approx((4 + 2 + 0 + 1 + 0 + 3) / 24)
    assert overall["current"] == pytest.approx((4 + 4 + 2 + 0 + 0 + 3) / 24)
    assert overall["delta"] == pytest.approx(3 / 24)
    rows = {r["group"]: r for r in cmp["by_difficulty"]}
    assert list(rows) == ["EASY", "MEDIUM", "HARD"]  # difficulty order, not alphabetical
    assert rows["EASY"]["pass@1"]["delta"] == pytest.approx(((4 + 0) - (4 + 1)) / 8)  # tasks 0, 3
    assert rows["MEDIUM"]["pass@1"]["delta"] == pytest.approx(((4 + 0) - (2 + 0)) / 8)  # tasks 1, 4
    assert rows["HARD"]["pass@1"]["delta"] == pytest.approx(((2 + 3) - (0 + 3)) / 8)  # tasks 2, 5
    # pass@2 per problem with n=4: c=1 → 1 - C(3,2)/C(4,2) = 0.5; task 3 goes from 0.5 to 0.
    assert rows["EASY"]["pass@2"]["delta"] == pytest.approx((1 + 0) / 2 - (1 + 0.5) / 2)
    assert cmp["newly_solved"] == [2] and cmp["newly_failing"] == [3]
    pb = cmp["paired_bootstrap"]
    assert pb["metric"] == "pass@1" and pb["delta"] == pytest.approx(3 / 24) and pb["problems"] == 6
    assert pb["low"] <= pb["delta"] <= pb["high"]


def test_comparison_without_problem_metadata_uses_metrics_aggregates(tmp_path):
    problems = make_problems(6)
    base = make_run(tmp_path / "b", BASELINE, problems=problems, layout="flat")
    cur = make_run(tmp_path / "c", CURRENT, problems=problems, layout="flat")
    cmp = compare_runs(load_run(cur), load_run(base))
    assert cmp["difficulty_source"].startswith("metrics.json")
    rows = {r["group"]: r for r in cmp["by_difficulty"]}
    assert rows["MEDIUM"]["pass@1"]["delta"] == pytest.approx(2 / 8)
    assert cmp["newly_solved"] == [2] and cmp["newly_failing"] == [3]


def test_different_problem_sets_compare_on_the_common_problems(tmp_path):
    problems = make_problems(6)
    base = make_run(tmp_path / "b", {t: BASELINE[t] for t in range(4)}, problems=problems[:4])
    cur = make_run(tmp_path / "c", CURRENT, problems=problems)
    cmp = compare_runs(load_run(cur, problems=problems), load_run(base, problems=problems[:4]))
    assert cmp["common_problems"] == 4 and cmp["only_in_current"] == [4, 5] and cmp["only_in_baseline"] == []
    assert cmp["overall"]["pass@1"]["delta"] == pytest.approx(((4 + 4 + 2 + 0) - (4 + 2 + 0 + 1)) / 16)


def test_report_command_with_compare(two_runs, capsys):
    cur, base, problems = two_runs
    from tasks.reporting.rundata import write_problem_info

    write_problem_info(cur, problems)
    assert main(["report", str(cur), "--compare", str(base), "--resamples", "300"]) == 0
    out = capsys.readouterr().out
    assert "pass@1: 54.2%" in out and "vs base: pass@1 +12.5 pp" in out
    assert "newly solved 1, newly failing 1" in out
    md = (cur / "report.md").read_text()
    assert "## Compared with `base`" in md and "EASY" in md and "+12.5 pp" in md
    assert "task 2 (`t2`, HARD)" in md.split("**Newly solved**")[1].split("**Newly failing**")[0]
    assert (cur / "plots" / "compare_by_difficulty.png").exists()
    assert (cur / "report.html").read_text().count("data:image/png;base64,") == 4


def test_report_command_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no metrics.json" in err


def test_report_command_records_the_run_in_the_index(two_runs, tmp_path, capsys):
    cur, _, _ = two_runs
    assert main(["report", str(cur), "--add-to-index", str(tmp_path), "--resamples", "50"]) == 0
    line = json.loads((tmp_path / "run-index.jsonl").read_text().splitlines()[0])
    assert line["run_id"] == "cur" and line["model"] == "ckpt-2"
    assert line["pass_at_k"]["pass@1"] == pytest.approx(13 / 24)
