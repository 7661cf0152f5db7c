"""`--dataset-check` / `--only-verified` on `taco-eval evaluate`: the `verified` block, TACO's file
unchanged, run ids unchanged unless the problem set changes, one-line errors for a bad check file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taco_eval.cli import main
from tasks import statuses
from tasks.dataset_check.subset import NOT_CHECKED, DatasetCheck, select
from tasks.metrics import compute_metrics
from tasks.types import ProgramResult
from tests.dataset_check.planted import USABLE, planted_rows, write_checked
from tests.helpers import stdin_problem

REPO = Path(__file__).resolve().parents[2]


def taco_eval(*args):
    return subprocess.run(
        [sys.executable, "-m", "taco_eval", *args], capture_output=True, text=True, cwd=REPO, timeout=600
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """(dataset, its check folder, generations: each row's first solution (or a wrong program) and a wrong one)."""
    root = tmp_path_factory.mktemp("verified")
    data, check = write_checked(root)
    generations = []
    for task_id, row in enumerate(planted_rows()):
        try:
            first = json.loads(row["solutions"])[:1]
        except ValueError:
            first = []
        generations.append({"task_id": task_id, "output": (first or ["print(1)"]) + ["print(1)"]})
    (root / "generations.json").write_text(json.dumps(generations))
    return data, check, root / "generations.json"


def evaluate(planted, out, *extra):
    data, _, generations = planted
    proc = taco_eval("evaluate", "-d", str(data), "-g", str(generations), "-o", str(out), "--k", "1,2", *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_verified_block_beside_unchanged_taco_metrics(planted, tmp_path):
    _, check, _ = planted
    evaluate(planted, tmp_path / "plain")
    proc = evaluate(planted, tmp_path / "checked", "--dataset-check", str(check))
    plain, checked = tmp_path / "plain", tmp_path / "checked"
    # TACO's file is exactly the same over all problems; so is the run id (nothing judged changed).
    assert (checked / "taco_metrics.json").read_text() == (plain / "taco_metrics.json").read_text()
    manifest = json.loads((checked / "manifest.json").read_text())
    assert manifest["run_id"] == json.loads((plain / "manifest.json").read_text())["run_id"]
    assert manifest["dataset_check"]["path"] == str((check / "dataset_check.parquet").resolve())

    metrics = json.loads((checked / "metrics.json").read_text())
    verified = metrics["verified"]
    # Each usable problem has its real solution (passes) and print(1) (fails): pass@1 0.5, pass@2 1.
    assert (verified["num_problems"], verified["pass@1"], verified["pass@2"]) == (3, 0.5, 1.0)
    assert verified["excluded_task_ids"] == {"broken": [1, 2], "no_solutions": [3], "skipped": [4, 6]}
    assert verified["dataset_check"]["excluded"] == {"broken": 2, "no_solutions": 1, "skipped": 2}
    assert verified["by_difficulty"]["MEDIUM_HARD"] == {
        "num_problems": 1,
        "num_samples": 2,
        "pass@1": 0.5,
        "pass@2": 1.0,
    }
    assert metrics["num_problems"] == 7 and metrics["pass@1"] < verified["pass@1"]
    assert "verified" not in json.loads((plain / "metrics.json").read_text())
    assert "verified subset (dataset check): 3 problems, pass@1 0.5000" in proc.stdout

    assert taco_eval("report", str(checked)).returncode == 0
    report = (checked / "report.md").read_text()
    section = report.split("## pass@k over verified problems (dataset check)")[1].split("\n## ")[0]
    assert "| **overall** | 3 | 6 | 50.0% | 100.0% |" in section
    assert "broken (no reference solution passes): 2 — tasks 1, 2" in section


def test_only_verified_scores_only_usable_problems(planted, tmp_path):
    _, check, _ = planted
    evaluate(planted, tmp_path / "plain")
    proc = evaluate(planted, tmp_path / "only", "--dataset-check", str(check), "--only-verified")
    assert "--only-verified: scoring the 3 usable problems" in proc.stderr
    only = tmp_path / "only"
    assert {r["task_id"] for r in pq.read_table(only / "results.parquet").to_pylist()} == set(USABLE)
    taco = json.loads((only / "taco_metrics.json").read_text())
    assert sorted(taco["detail"]["pass@1"]) == [str(t) for t in USABLE] and taco["pass@1"] == 0.5
    metrics = json.loads((only / "metrics.json").read_text())
    assert metrics["verified"]["dataset_check"]["only_verified"] is True
    assert metrics["verified"]["excluded_task_ids"] == {"broken": [1, 2], "no_solutions": [3], "skipped": [4, 6]}
    assert metrics["skipped_problems"] == []  # the malformed row is left out, not scored as skipped
    run_ids = {json.loads((d / "manifest.json").read_text())["run_id"] for d in (only, tmp_path / "plain")}
    assert len(run_ids) == 2


def test_bad_check_files_are_one_line_errors(planted, tmp_path, capsys, tiny_model_dir):
    """Through the CLI's own entry point (in this process: seven interpreter starts cost ~30 s)."""
    data, check, generations = planted

    def one_line_error(*args, needles):
        assert main(["-v", *args]) == 2  # -v: leave this process's warning filters alone
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"taco-eval {args[0]}: error: "), err
        assert all(needle in err[0] for needle in needles), err[0]

    base = ["evaluate", "-d", str(data), "-g", str(generations), "-o", str(tmp_path / "o")]
    one_line_error(*base, "--dataset-check", str(tmp_path / "nope.parquet"), needles=["does not exist"])
    one_line_error(*base, "--dataset-check", str(tmp_path), needles=["has no dataset_check.parquet"])
    one_line_error(*base, "--dataset-check", str(data), needles=["cannot be read as Parquet"])
    pq.write_table(pa.table({"task_id": [0]}), tmp_path / "cols.parquet")
    one_line_error(*base, "--dataset-check", str(tmp_path / "cols.parquet"), needles=["lacks the column(s)"])
    pq.write_table(pa.table({"task_id": [0], "problem_id": ["test/0"], "status": ["fine"]}), tmp_path / "s.parquet")
    one_line_error(*base, "--dataset-check", str(tmp_path / "s.parquet"), needles=["status 'fine'"])
    one_line_error(*base, "--only-verified", needles=["--only-verified needs --dataset-check"])
    # A check of other data (the bundled samples share problem ids test/0… but not the tests).
    other = ["evaluate", "-d", "samples", "-g", str(generations), "-o", str(tmp_path / "o")]
    one_line_error(*other, "--dataset-check", str(check), needles=["made on other data", "tests of task 0"])
    # `run` refuses the same before any Prefect server starts.
    one_line_error("run", "--dataset-check", str(tmp_path / "nope"), needles=["does not exist"])
    one_line_error("run", "--only-verified", needles=["--only-verified needs --dataset-check"])
    model = ["-m", str(tiny_model_dir)]
    one_line_error("run", *model, "-d", "samples", "--dataset-check", str(check), needles=["made on other data"])


def test_selection_and_metrics_block_in_memory():
    check = DatasetCheck(
        "c.parquet",
        "sha",
        {0: statuses.VERIFIED, 1: statuses.PARTIAL, 2: statuses.BROKEN, 3: statuses.SKIPPED},
        {t: f"t{t}" for t in range(4)},
        {},
    )
    selection = select(check, [0, 1, 2, 3, 4], only_verified=False)
    assert selection.usable == {0, 1}
    assert selection.excluded == {statuses.BROKEN: [2], statuses.SKIPPED: [3], NOT_CHECKED: [4]}

    problems = [stdin_problem(["1"], ["1"], task_id=t, difficulty="HARD" if t else "EASY") for t in range(5)]
    results = [
        ProgramResult(t, i, "x", passed, statuses.PASSED if passed else statuses.WRONG_ANSWER, 1, 1, [int(passed)])
        for t, outcomes in enumerate([(1, 1), (1, 0), (0, 0), (0, 0), (0, 0)])
        for i, passed in enumerate(map(bool, outcomes))
    ]
    with_block, taco = compute_metrics(problems, [], results, [1, 2], selection)
    plain, taco_plain = compute_metrics(problems, [], results, [1, 2])
    assert taco == taco_plain and {k: v for k, v in with_block.items() if k != "verified"} == plain
    block = with_block["verified"]
    assert (block["num_problems"], block["pass@1"], block["pass@2"]) == (2, 0.75, 1.0)
    assert block["by_difficulty"]["HARD"]["pass@1"] == 0.5
    assert block["excluded_task_ids"] == {"broken": [2], "skipped": [3], "not_checked": [4]}
