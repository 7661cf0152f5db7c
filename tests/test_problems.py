"""Loading TACO-schema data from every supported source, and malformed rows."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.types import (
    JUDGE_CASE_INSENSITIVE,
    JUDGE_DEFAULT,
    JUDGE_FLOAT_TOLERANCE,
    JUDGE_NONDETERMINISTIC,
    MODE_CALL,
    MODE_STDIN,
)
from tasks.problems import DatasetError, load_problems, read_raw_rows


def taco_row(question="q", inputs=("1\n",), outputs=("1\n",), fn_name=None, difficulty="EASY", skills="['Sorting']"):
    io = {"inputs": list(inputs), "outputs": list(outputs)}
    if fn_name:
        io["fn_name"] = fn_name
    return {
        "question": question,
        "solutions": json.dumps(["print(1)"]),
        "starter_code": "",
        "input_output": json.dumps(io),
        "difficulty": difficulty,
        "raw_tags": "[]",
        "name": None,
        "source": "codeforces",
        "tags": skills,
        "skill_types": skills,
        "url": "",
        "Expected Auxiliary Space": None,
        "time_limit": "1 second",
        "date": None,
        "picture_num": None,
        "memory_limit": None,
        "Expected Time Complexity": None,
    }


ROWS = [
    taco_row(),
    taco_row(
        inputs=[[1, 2], [3, 4]],
        outputs=[[3], [7]],
        fn_name="add",
        difficulty="HARD",
        skills="['Mathematics', 'Greedy algorithms']",
    ),
    {**taco_row(), "input_output": "{not json"},
    taco_row(inputs=["1", "2"], outputs=["1"]),
    taco_row(inputs=[], outputs=[]),
    taco_row(inputs=[["a", "b"]], outputs=[["a", "b"]], difficulty="MEDIUM"),  # stdin lines as lists
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bundled_samples_load_clean():
    loaded = load_problems()
    assert len(loaded.problems) >= 20 and not loaded.malformed
    modes = {p.mode for p in loaded.problems}
    assert modes == {MODE_STDIN, MODE_CALL}
    assert any("class Solution" in p.starter_code for p in loaded.problems)
    assert {p.difficulty for p in loaded.problems} >= {"EASY", "MEDIUM", "MEDIUM_HARD", "HARD", "VERY_HARD"}


def test_normalisation_and_malformed_rows(tmp_path):
    loaded = load_problems(str(write_jsonl(tmp_path / "d.jsonl", ROWS)))
    ids = [p.task_id for p in loaded.problems]
    assert ids == [0, 1, 5]
    stdin, call, lines = loaded.problems
    assert (stdin.mode, stdin.fn_name, stdin.skills) == (MODE_STDIN, None, ("Sorting",))
    assert (call.mode, call.fn_name, call.inputs, call.outputs) == (MODE_CALL, "add", [[1, 2], [3, 4]], [[3], [7]])
    assert lines.inputs == ["a\nb"]
    reasons = {m.index: m.reason for m in loaded.malformed}
    assert set(reasons) == {2, 3, 4}
    assert "not valid JSON" in reasons[2]
    assert "2 inputs but 1 outputs" == reasons[3]
    assert reasons[4] == "no tests"


def test_invalid_json_line_is_a_malformed_row(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(json.dumps(ROWS[0]).encode() + b"\n{broken\n\xff\xfe\n" + json.dumps(ROWS[0]).encode() + b"\n")
    loaded = load_problems(str(path))
    assert [p.task_id for p in loaded.problems] == [0, 3]
    assert [m.index for m in loaded.malformed] == [1, 2]


def test_filters_keep_row_indices(tmp_path):
    path = str(write_jsonl(tmp_path / "d.jsonl", ROWS))
    assert [p.task_id for p in load_problems(path, difficulties=["hard"]).problems] == [1]
    assert [p.task_id for p in load_problems(path, skills=["greedy algorithms"]).problems] == [1]
    assert [p.task_id for p in load_problems(path, task_ids=[5, 0]).problems] == [0, 5]
    assert [p.task_id for p in load_problems(path, limit=1).problems] == [0]
    with pytest.raises(DatasetError, match="outside"):
        load_problems(path, task_ids=[99])


def test_json_parquet_and_save_to_disk_sources(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps(ROWS))
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "d.parquet")
    import datasets

    datasets.DatasetDict({"test": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(tmp_path / "saved"))
    for source in ("d.json", "d.parquet", "saved"):
        loaded = load_problems(str(tmp_path / source))
        assert [p.task_id for p in loaded.problems] == [0, 1, 5], source
    with pytest.raises(DatasetError, match="no split 'validation'"):
        load_problems(str(tmp_path / "saved"), split="validation")


def test_folder_laid_out_like_the_hub_repo(tmp_path):
    # BAAI/TACO: a loading script beside train/ and test/ folders of .arrow files.
    import datasets

    repo = tmp_path / "TACO"
    (repo / "test").mkdir(parents=True)
    (repo / "TACO.py").write_text("# loading script: never executed\n")
    ds = datasets.Dataset.from_list(ROWS)
    ds.save_to_disk(str(tmp_path / "tmp_save"))
    arrow = next((tmp_path / "tmp_save").glob("*.arrow"))
    (repo / "test" / "data-00000-of-00001.arrow").write_bytes(arrow.read_bytes())
    pq.write_table(pa.Table.from_pylist(ROWS[:2]), repo / "train-00000-of-00001.parquet")
    assert len(read_raw_rows(str(repo), "test")[0]) == len(ROWS)
    assert len(read_raw_rows(str(repo), "train")[0]) == 2
    with pytest.raises(DatasetError, match="no .arrow or .parquet data files for split 'dev'"):
        read_raw_rows(str(repo), "dev")


def test_taco_special_judges_apply_to_the_test_split(tmp_path):
    rows = [taco_row() for _ in range(1000)]
    path = str(write_jsonl(tmp_path / "taco_test.jsonl", rows))
    judges = {p.task_id: p.judge for p in load_problems(path, task_ids=[0, 5, 18, 20]).problems}
    assert judges == {
        0: JUDGE_DEFAULT,
        5: JUDGE_NONDETERMINISTIC,
        18: JUDGE_FLOAT_TOLERANCE,
        20: JUDGE_CASE_INSENSITIVE,
    }
    off = load_problems(path, task_ids=[5], special_judges="none").problems[0]
    assert off.judge == JUDGE_DEFAULT
    # Another dataset of a different size is not TACO's test split: no special judges.
    small = load_problems(str(write_jsonl(tmp_path / "small.jsonl", rows[:30])))
    assert {p.judge for p in small.problems} == {JUDGE_DEFAULT}


def test_unreadable_sources_raise_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="neither a local file"):
        load_problems("no/such/thing/here")
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(DatasetError, match="unsupported file type"):
        load_problems(str(tmp_path / "x.csv"))
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(DatasetError, match="expected a JSON list"):
        load_problems(str(tmp_path / "x.json"))
