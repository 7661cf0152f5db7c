"""A dataset with planted faults, built from real CodeContests problems and their real accepted
solutions (tests/data/codecontests_sample), and the status a dataset check must give each row.

Row → what was done to it → expected check:
0 Christmas Spruce, untouched                                  → verified
1 Fox And Two Dots, expected output of test 3 flipped           → broken, failing_tests [3]
2 Books Exchange, test 2's input lost its first line (the count) → broken, failing_tests [2]
3 Fox Dividing Cheese, `solutions` = "[]"                        → no_solutions
4 Minimum number of steps, `input_output` is not JSON            → skipped (malformed row)
5 Minimum number of steps, solutions [real, another problem's]   → partial, failing_tests []
6 String Multiplication, `solutions` is not JSON                 → skipped
7 Christmas Spruce, solutions [real, real, wrong]: with K = 2 only the real ones run → verified
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tasks import statuses

CODECONTESTS = Path(__file__).resolve().parents[1] / "data" / "codecontests_sample" / "problems.jsonl"
SPRUCE, TWO_DOTS, BOOKS, CHEESE, STEPS, STRINGS = 9, 31, 4, 35, 14, 39
MAX_SOLUTIONS = 2

EXPECTED = {
    0: (statuses.VERIFIED, []),
    1: (statuses.BROKEN, [3]),
    2: (statuses.BROKEN, [2]),
    3: (statuses.NO_SOLUTIONS, []),
    4: (statuses.SKIPPED, []),
    5: (statuses.PARTIAL, []),
    6: (statuses.SKIPPED, []),
    7: (statuses.VERIFIED, []),
}
USABLE = [0, 5, 7]


def codecontests_rows() -> list[dict]:
    return [json.loads(line) for line in CODECONTESTS.read_text().splitlines() if line.strip()]


def _with_io(row: dict, change) -> dict:
    row = copy.deepcopy(row)
    io = json.loads(row["input_output"])
    change(io)
    row["input_output"] = json.dumps(io)
    return row


def _solution(row: dict) -> str:
    return json.loads(row["solutions"])[0]


def planted_rows() -> list[dict]:
    cc = codecontests_rows()
    spruce, two_dots, books, cheese, steps, strings = (cc[i] for i in (SPRUCE, TWO_DOTS, BOOKS, CHEESE, STEPS, STRINGS))
    assert json.loads(two_dots["input_output"])["outputs"][3] == "No\n"
    assert json.loads(books["input_output"])["inputs"][2].startswith("20\n")

    def flip_answer(io):
        io["outputs"][3] = "Yes\n"

    def drop_count_line(io):
        io["inputs"][2] = io["inputs"][2].split("\n", 1)[1]

    rows = [
        copy.deepcopy(spruce),
        _with_io(two_dots, flip_answer),
        _with_io(books, drop_count_line),
        {**copy.deepcopy(cheese), "solutions": "[]"},
        {**copy.deepcopy(steps), "input_output": '{"inputs": ["1\\n"], "outputs": '},
        {**copy.deepcopy(steps), "solutions": json.dumps([_solution(steps), _solution(spruce)])},
        {**copy.deepcopy(strings), "solutions": "['print(1)'"},
        {**copy.deepcopy(spruce), "solutions": json.dumps([_solution(spruce)] * 2 + ["print('No')"])},
    ]
    return rows


def write_planted(path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in planted_rows()))
    return path


def write_checked(root: Path) -> tuple[Path, Path]:
    """The planted dataset and its dataset check folder, written under `root`."""
    from tasks.dataset_check.check import run_check
    from tasks.problems import load_problems
    from tasks.types import JudgeConfig

    data = write_planted(root / "planted.jsonl")
    loaded = load_problems(str(data), max_solutions=MAX_SOLUTIONS)
    run_check(loaded, JudgeConfig(timeout_s=10.0), root / "check", max_solutions=MAX_SOLUTIONS, workers=2)
    return data, root / "check"
