"""Bad input, fuzzed: whatever a dataset row or a generations file holds, the run either goes on
(the row is reported and scored `skipped`) or stops with one clear message; it never crashes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.generations import GenerationsError, read_generations
from tasks import statuses
from tasks.types import MODE_CALL, MODE_STDIN, JudgeConfig, MalformedRow, Problem
from tasks.judging.evaluate import Sample, evaluate_samples
from tasks.problems import DatasetError, load_problems, normalise_row

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
io_objects = st.fixed_dictionaries(
    {},
    optional={
        "inputs": st.one_of(json_values, st.lists(json_values, max_size=5)),
        "outputs": st.one_of(json_values, st.lists(json_values, max_size=5)),
        "fn_name": st.one_of(st.none(), st.text(max_size=12), st.integers(), st.just("solve")),
    },
)
input_output_json = st.one_of(
    io_objects.map(json.dumps),  # a JSON string, as in TACO
    io_objects,  # already decoded
    st.text(max_size=40),  # not JSON
    json_values.map(json.dumps),  # JSON, but not an object
    st.none(),
)


def _rows(input_output):
    return st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "input_output": input_output,
                "question": st.one_of(st.text(max_size=20), st.integers(), st.none()),
                "starter_code": st.one_of(st.text(max_size=20), st.none()),
                "difficulty": st.one_of(st.text(max_size=10), st.none(), st.integers()),
                "skill_types": st.one_of(st.text(max_size=20), json_values),
                "judge": st.one_of(st.text(max_size=10), st.none()),
            },
        ),
        json_values,  # not even an object
    )


json_rows = _rows(input_output_json)  # what a .jsonl line can hold
rows = _rows(st.one_of(input_output_json, st.binary(max_size=40)))  # Arrow rows may also hold bytes


@FUZZ
@given(index=st.integers(0, 10**6), row=rows)
def test_any_row_normalises_or_is_reported(index, row):
    item = normalise_row(index, row, "test")
    assert isinstance(item, (Problem, MalformedRow))
    assert item.index == index if isinstance(item, MalformedRow) else item.task_id == index
    if isinstance(item, MalformedRow):
        assert item.reason
        return
    assert item.num_tests > 0 and len(item.inputs) == len(item.outputs)
    if item.mode == MODE_STDIN:
        assert all(isinstance(x, str) for x in item.inputs + item.outputs)
    else:
        assert item.mode == MODE_CALL and item.fn_name.isidentifier()
        assert all(isinstance(args, list) for args in item.inputs)
    item.content_hash()  # hashable for the verdict cache, whatever the values


@FUZZ
@given(lines=st.lists(st.one_of(st.binary(max_size=60), json_rows.map(lambda r: json.dumps(r).encode())), max_size=8))
def test_any_jsonl_file_loads_with_bad_lines_reported(lines):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.jsonl"
        path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")
        try:
            loaded = load_problems(str(path))
        except DatasetError as exc:  # never expected for a .jsonl file, but would be a clear message
            raise AssertionError(f"a .jsonl file must load row by row: {exc}")
        nonblank = sum(1 for line in lines if line.replace(b"\n", b" ").strip())
        assert len(loaded.problems) + len(loaded.malformed) == nonblank
        assert all(m.reason for m in loaded.malformed)


@FUZZ
@given(
    content=st.one_of(
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=80),
        st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "task_id": st.one_of(st.integers(-3, 5), st.text(max_size=3), st.booleans()),
                    "output": st.one_of(
                        st.lists(st.one_of(st.text(max_size=10), st.none(), st.integers()), max_size=3), json_values
                    ),
                    "prompt": st.text(max_size=5),
                },
            ),
            max_size=4,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_any_generations_json_reads_or_fails_clearly(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generations.json"
        path.write_bytes(content)
        try:
            rows = read_generations(path)
        except GenerationsError as exc:
            message = str(exc)
            assert message.startswith(str(path)) and "\n" not in message.strip()
            return
        assert rows
        for task_id, idx, code in rows:
            assert type(task_id) is int and task_id >= 0 and type(idx) is int and isinstance(code, str)


def test_bad_dataset_rows_wrong_task_ids_empty_and_huge_generations_in_one_run():
    huge = "x" * (8 * 1024 * 1024)
    problems = {
        0: Problem(0, "p0", "", "", None, MODE_STDIN, ["1 2\n"], ["3\n"]),
        2: Problem(2, "p2", "", "", None, MODE_STDIN, [huge + "\n"], [huge + "\n"]),
    }
    samples = [
        Sample(0, 0, "a, b = map(int, input().split())\nprint(a + b)"),
        Sample(0, 1, ""),  # empty generation
        Sample(0, 2, "\x00\udcff"),  # garbage that is not even valid source
        Sample(1, 0, "print(1)"),  # a malformed problem
        Sample(7, 0, "print(1)"),  # a task_id the dataset does not have
        Sample(2, 0, "import sys\nsys.stdout.write(sys.stdin.read())"),  # an 8 MB test
        Sample(2, 1, "x" * 200_000),  # a huge generation (a NameError, quickly)
    ]
    results, stats = evaluate_samples(
        problems,
        samples,
        JudgeConfig(timeout_s=10.0),
        workers=2,
        skipped={1: "malformed problem: 'input_output' is not valid JSON"},
    )
    got = {(r.task_id, r.sample_idx): r.status for r in results}
    assert got == {
        (0, 0): statuses.PASSED,
        (0, 1): statuses.WRONG_ANSWER,
        (0, 2): statuses.COMPILE_ERROR,
        (1, 0): statuses.SKIPPED,
        (7, 0): statuses.SKIPPED,
        (2, 0): statuses.PASSED,
        (2, 1): statuses.RUNTIME_ERROR,
    }
    skipped = {(r.task_id, r.sample_idx): r.detail for r in results if r.status == statuses.SKIPPED}
    assert "malformed" in skipped[(1, 0)] and "not a problem" in skipped[(7, 0)]


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "taco_eval", "evaluate", *args, "--no-cache", "--isolation", "process"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_with_broken_dataset_and_generations_files(tmp_path):
    dataset = tmp_path / "data.jsonl"
    good = {"question": "q", "input_output": json.dumps({"inputs": ["1\n"], "outputs": ["1\n"]})}
    dataset.write_bytes(
        b"\n".join(
            [
                json.dumps(good).encode(),
                b"\xff\xfe not utf-8 \x80",
                json.dumps({"question": "q", "input_output": "{broken"}).encode(),
                json.dumps({"question": "q"}).encode(),
                json.dumps([1, 2, 3]).encode(),
            ]
        )
        + b"\n"
    )
    gens = tmp_path / "g.json"
    gens.write_text(
        json.dumps(
            [{"task_id": i, "output": ["print(input())", ""]} for i in range(5)]
            + [{"task_id": 99, "output": ["print(1)"]}]
        )
    )
    ok = _cli("-d", str(dataset), "-g", str(gens), "-o", str(tmp_path / "out"))
    assert ok.returncode == 0, ok.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["statuses"]["skipped"] == 9  # rows 1-4 (2 samples each) and task 99
    for index in (1, 2, 3, 4):
        assert f"skipping task {index}" in ok.stderr
    assert "99" in ok.stderr

    for content, message in [
        (b"\xff\xfe\x00 not utf-8", "not UTF-8"),
        (b'{"task_id": 0}', "expected a JSON list"),
        (b"[]", "contains no generations"),
    ]:
        gens.write_bytes(content)
        bad = _cli("-d", str(dataset), "-g", str(gens), "-o", str(tmp_path / "bad"))
        assert bad.returncode == 2
        assert message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
