"""`taco-eval check-dataset` on real problems with planted faults (tests/dataset_check/planted.py):
every status exactly right, the corrupted test named, resumed from the verdict cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tasks import statuses
from tasks.dataset_check.check import classify, failing_tests
from tasks.problems import ReferenceSolutions, load_problems, reference_solutions
from tasks.types import ProgramResult
from tests.dataset_check.planted import EXPECTED, MAX_SOLUTIONS, USABLE, write_planted
from tests.helpers import stdin_problem

REPO = Path(__file__).resolve().parents[2]


def check_dataset(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "taco_eval", "check-dataset", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env=env,
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return write_planted(tmp_path_factory.mktemp("planted") / "planted.jsonl")


def test_planted_faults_get_exactly_their_status(planted, tmp_path):
    out = tmp_path / "check"
    # A cache of its own: the first run executes everything, the second finds everything cached.
    env = {**os.environ, "TACO_EVAL_CACHE_DIR": str(tmp_path / "cache")}
    proc = check_dataset("-d", str(planted), "-o", str(out), "--max-solutions", str(MAX_SOLUTIONS), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "running 7 reference solutions" in proc.stderr  # the progress bar (rows 0-2, 5, 7)

    rows = {r["task_id"]: r for r in pq.read_table(out / "dataset_check.parquet").to_pylist()}
    assert {t: (r["status"], r["failing_tests"]) for t, r in rows.items()} == EXPECTED
    # The corrupted expected output and the test in the wrong format are named, with what happened.
    assert rows[1]["detail"].startswith("solution 0, test index 3: wrong_answer: token 1: expected 'Yes', got 'No'")
    assert rows[2]["detail"].startswith("solution 0, test index 2: runtime_error")
    assert "ValueError" in rows[2]["detail"]
    # partial: the real solution passes, another problem's does not.
    assert (rows[5]["solutions_total"], rows[5]["solutions_run"], rows[5]["solutions_passed"]) == (2, 2, 1)
    assert rows[5]["detail"].startswith("solution 1, test index 0: ")
    # K caps what runs, not what is counted.
    assert (rows[7]["solutions_total"], rows[7]["solutions_run"], rows[7]["solutions_passed"]) == (3, 2, 2)
    assert "not valid JSON" in rows[4]["detail"] and "'input_output'" in rows[4]["detail"]
    assert "'solutions' is not valid JSON" in rows[6]["detail"]
    assert rows[3]["solutions_total"] == 0 and rows[3]["tests_total"] == 50
    assert all(r["tests_sha256"] for t, r in rows.items() if t != 4) and rows[4]["tests_sha256"] is None

    summary = json.loads((out / "dataset_check.json").read_text())
    assert summary["counts"] == {"verified": 2, "partial": 1, "broken": 2, "no_solutions": 1, "skipped": 2}
    assert summary["by_difficulty"]["EASY"] == {
        "verified": 2,
        "partial": 0,
        "broken": 2,
        "no_solutions": 1,
        "skipped": 0,
    }
    assert summary["by_difficulty"]["MEDIUM_HARD"]["skipped"] == 1  # a malformed row keeps its difficulty
    assert summary["verified"] == [0, 7] and summary["usable"] == USABLE
    assert summary["max_solutions"] == MAX_SOLUTIONS and summary["judge"]["early_stop"] is False
    report = (out / "report.md").read_text()
    assert "## Problems that are not verified" in report and "1 of 13: 3" in report
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "verified 2, partial 1, broken 2, no_solutions 1, skipped 2" in proc.stdout

    # Resumable like `evaluate`: every verdict is in the cache; nothing runs again, same rows.
    again = check_dataset("-d", str(planted), "-o", str(out), "--max-solutions", str(MAX_SOLUTIONS), env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "(5 of 5 unique programs from the cache), 0 tests" in again.stdout
    assert {r["task_id"]: r for r in pq.read_table(out / "dataset_check.parquet").to_pylist()} == rows


def test_bad_arguments_are_one_line(planted, tmp_path):
    proc = check_dataset("-d", str(planted), "-o", str(tmp_path), "--max-solutions", "0")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "taco-eval check-dataset: error: --max-solutions must be at least 1, got 0"
    ]
    proc = check_dataset("-d", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("taco-eval check-dataset: error: dataset")


def _result(idx, codes, status=None):
    passed = all(c == 1 for c in codes)
    return ProgramResult(
        0, idx, "x", passed, status or (statuses.PASSED if passed else statuses.WRONG_ANSWER), len(codes), 4, codes
    )


def test_failing_tests_are_those_every_run_fails():
    assert failing_tests([_result(0, [1, 0, 0, 1]), _result(1, [1, 1, 0, 0])], 4) == [2]
    # A compile error fails every test; a run that stopped early failed the tests it never reached.
    assert failing_tests([_result(0, [-2], statuses.COMPILE_ERROR), _result(1, [1, 0, 1])], 4) == [1, 3]
    assert failing_tests([], 3) == [0, 1, 2]


def test_classify_statuses():
    problem = stdin_problem(["1", "2", "3", "4"], ["1", "2", "3", "4"])
    two = ReferenceSolutions(2, ("a", "b"))
    assert classify(problem, two, [_result(0, [1] * 4), _result(1, [1] * 4)]).status == statuses.VERIFIED
    partial = classify(problem, two, [_result(0, [1] * 4), _result(1, [1, 0, 1, 1])])
    assert (partial.status, partial.failing_tests, partial.solutions_passed) == (statuses.PARTIAL, [], 1)
    broken = classify(problem, two, [_result(0, [-2], statuses.COMPILE_ERROR), _result(1, [1, 0, 1, 1])])
    assert (broken.status, broken.failing_tests) == (statuses.BROKEN, [1])
    assert broken.detail.startswith("solution 0: compile_error")
    assert classify(problem, ReferenceSolutions(), []).status == statuses.NO_SOLUTIONS
    bad = classify(problem, ReferenceSolutions(error="'solutions' is not valid JSON"), [])
    assert (bad.status, bad.detail) == (statuses.SKIPPED, "'solutions' is not valid JSON")


@pytest.mark.parametrize(
    ("value", "total", "codes", "error"),
    [
        ('["a", "b", "c"]', 3, ("a", "b"), None),
        (["a"], 1, ("a",), None),
        ("[]", 0, (), None),
        ("", 0, (), None),
        (None, 0, (), None),
        ("[1, 2]", 0, (), "not a list of program texts"),
        ("{", 0, (), "not valid JSON"),
    ],
)
def test_reference_solutions_of_a_row(value, total, codes, error):
    refs = reference_solutions({"solutions": value}, 2)
    assert (refs.total, refs.codes) == (total, codes)
    assert (refs.error is None) if error is None else (error in refs.error)


def test_solutions_load_only_when_asked(planted):
    assert load_problems(str(planted)).solutions == {}
    loaded = load_problems(str(planted), max_solutions=1)
    assert set(loaded.solutions) == set(range(8))
    assert loaded.solutions[7].total == 3 and len(loaded.solutions[7].codes) == 1


def test_a_killed_check_resumes_from_the_verdict_cache(tmp_path):
    """SIGKILL mid-check, then the same command: what finished before the kill is not run again."""
    import signal
    import sqlite3
    import time

    data = Path(__file__).resolve().parents[1] / "data" / "codecontests_sample" / "problems.jsonl"
    env = {**os.environ, "TACO_EVAL_CACHE_DIR": str(tmp_path / "cache")}
    # 20 real problems (rows 3-22: the slowest reference, row 2's, left out), one worker.
    cmd = [sys.executable, "-m", "taco_eval", "check-dataset", "-d", str(data), "-o", str(tmp_path / "out"),
           "--task-ids", ",".join(map(str, range(3, 23))), "--workers", "1", "--timeout", "10"]  # fmt: skip

    def cached() -> int:
        try:
            with sqlite3.connect(tmp_path / "cache" / "verdicts.sqlite") as db:
                return db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
        except sqlite3.Error:  # not created yet
            return 0

    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and cached() < 5 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = cached()
    assert 5 <= done_before < 20, done_before
    assert not (tmp_path / "out" / "dataset_check.parquet").exists()  # nothing half-written

    resumed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    from_cache = int(resumed.stdout.split("reference solutions (")[1].split(" of ")[0])
    assert from_cache >= done_before
    assert "20 problems: verified 20," in resumed.stdout
