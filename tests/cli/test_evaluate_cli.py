"""`taco-eval evaluate` end to end, through the real console entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"


def evaluate(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "taco_eval", "evaluate", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_reference_solutions_score_one_and_wrong_programs_zero(tmp_path):
    ok = evaluate("-g", str(DATA / "sample_reference_generations.json"), "-o", str(tmp_path / "ref"), "--no-cache")
    assert ok.returncode == 0, ok.stderr
    taco = json.loads((tmp_path / "ref" / "taco_metrics.json").read_text())
    assert taco["pass@1"] == 1.0
    assert set(taco["detail"]["pass@1"].values()) == {1.0}
    metrics = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    assert metrics["statuses"]["passed"] == metrics["num_samples"] >= 20
    assert "judged" in ok.stdout and "tests/s" in ok.stdout

    bad = evaluate("-g", str(DATA / "sample_wrong_generations.json"), "-o", str(tmp_path / "bad"), "--no-cache")
    assert bad.returncode == 0, bad.stderr
    assert json.loads((tmp_path / "bad" / "taco_metrics.json").read_text())["pass@1"] == 0.0
    rows = pq.read_table(tmp_path / "bad" / "results.parquet").to_pylist()
    assert all(not r["passed"] and r["status"] == "wrong_answer" for r in rows)
    assert set(rows[0]) >= {
        "task_id",
        "sample_idx",
        "code_sha256",
        "passed",
        "status",
        "tests_run",
        "tests_total",
        "test_codes",
        "runtime_ms",
        "detail",
    }


def test_mixed_samples_give_fractional_pass_at_k(tmp_path):
    ref = json.loads((DATA / "sample_reference_generations.json").read_text())
    wrong = json.loads((DATA / "sample_wrong_generations.json").read_text())
    mixed = [{"task_id": r["task_id"], "output": r["output"] + w["output"]} for r, w in zip(ref, wrong)]
    g = tmp_path / "g.json"
    g.write_text(json.dumps(mixed))
    res = evaluate("-g", str(g), "-o", str(tmp_path / "o"), "--k", "1,2,5", "--task-ids", "0,1,2,3", "--no-cache")
    assert res.returncode == 0, res.stderr
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["ks"] == [1, 2] and metrics["pass@1"] == 0.5 and metrics["pass@2"] == 1.0
    assert metrics["num_problems"] == 4


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"task_id": 0}', "expected a JSON list"),
        ('[{"task_id": 0, "output": "print(1)"}]', "'output' must be a list"),
        ('[{"task_id": "x", "output": []}]', "task_id 'x' is not a non-negative integer"),
        ("[1, 2", "not valid JSON"),
        ("[]", "contains no generations"),
    ],
)
def test_bad_generations_file_is_one_clear_error(tmp_path, content, message):
    g = tmp_path / "g.json"
    g.write_text(content)
    res = evaluate("-g", str(g), "-o", str(tmp_path / "o"))
    assert res.returncode == 2
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_bad_arguments_exit_2(tmp_path):
    g = DATA / "sample_reference_generations.json"
    for args, message in [
        (["-g", str(tmp_path / "missing.json")], "no such file"),
        (["-g", str(g), "--timeout", "0"], "--timeout must be positive"),
        (["-g", str(g), "-d", str(tmp_path / "nope.jsonl")], "neither a local file"),
        (["-g", str(g), "--isolation", "vm"], "unknown isolation level"),
    ]:
        res = evaluate(*args, "-o", str(tmp_path / "o"))
        assert res.returncode == 2, (args, res.stderr)
        assert message in res.stderr


def test_unknown_task_ids_and_malformed_problems_are_skipped_not_fatal(tmp_path):
    data = tmp_path / "d.jsonl"
    good = {
        "question": "q",
        "input_output": json.dumps({"inputs": ["1\n"], "outputs": ["2\n"]}),
        "difficulty": "EASY",
        "skill_types": "[]",
    }
    data.write_text(json.dumps(good) + "\n" + json.dumps({**good, "input_output": "{bad"}) + "\n")
    g = tmp_path / "g.json"
    g.write_text(
        json.dumps(
            [
                {"task_id": 0, "output": ["print(int(input())*2)"]},
                {"task_id": 1, "output": ["print(1)"]},
                {"task_id": 7, "output": ["print(1)"]},
            ]
        )
    )
    res = evaluate("-d", str(data), "-g", str(g), "-o", str(tmp_path / "o"), "--no-cache")
    assert res.returncode == 0, res.stderr
    assert "skipping task 1" in res.stderr and "task_id(s) are not rows" in res.stderr
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["pass@1"] == 1.0 and metrics["num_problems"] == 1
    assert metrics["statuses"]["skipped"] == 2
    assert metrics["unknown_task_ids"] == [7]


def test_float_tolerance_option_judges_is_cached_apart_and_recorded(tmp_path):
    io = json.dumps({"inputs": ["1 2\n"], "outputs": ["1.5\n"]})
    data = tmp_path / "d.jsonl"
    data.write_text(
        json.dumps(
            {"question": "Print the mean. Answers within 10^-4 of the actual answer are accepted.", "input_output": io}
        )
        + "\n"
        + json.dumps({"question": "Print the mean.", "input_output": io})
        + "\n"
    )
    g = tmp_path / "g.json"
    g.write_text(
        json.dumps([{"task_id": 0, "output": ["print(1.50005)"]}, {"task_id": 1, "output": ["print(1.5000005)"]}])
    )
    env = {**os.environ, "TACO_EVAL_VERDICT_CACHE": str(tmp_path / "verdicts.sqlite")}

    def passed(*options):
        out = tmp_path / "-".join(["o", *options])
        res = subprocess.run(
            [sys.executable, "-m", "taco_eval", "evaluate", "-d", str(data), "-g", str(g), "-o", str(out), *options],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr
        manifest = json.loads((out / "manifest.json").read_text())
        rows = pq.read_table(out / "results.parquet").to_pylist()
        return manifest["config"]["judge"]["float_tolerance"], [r["passed"] for r in rows]

    # The statement's 1e-4 for task 0, the default 1e-6 for task 1; then exact for both, though the
    # first run's verdicts are in the cache.
    assert passed() == (1e-6, [True, True])
    assert passed("--float-tolerance", "0") == (0.0, [False, False])
    assert passed("--float-tolerance", "1e-7") == (1e-7, [True, False])


def test_float_tolerance_reaches_the_flow():
    import argparse
    import inspect

    from flows.taco_eval import taco_eval_flow
    from taco_eval.cli import build_parser
    from taco_eval.commands.run import flow_parameters
    from taco_eval.errors import UsageError

    args = build_parser().parse_args(["run", "--float-tolerance", "1e-9", "--isolation", "process"])
    params = flow_parameters(args)
    assert params["float_tolerance"] == 1e-9
    assert set(params) <= set(inspect.signature(taco_eval_flow.fn).parameters)
    with pytest.raises(UsageError, match="--float-tolerance must be"):
        flow_parameters(argparse.Namespace(**{**vars(args), "float_tolerance": -1.0}))
