"""Reading the float tolerance a statement grants (tasks.tolerance)."""

import json
import time
from pathlib import Path

import pytest

from tasks.problems import load_problems, normalise_row
from tasks.tolerance import stated_tolerance

# 40 real Codeforces problems (tests/data/codecontests_sample/README.md); six have float answers.
CODECONTESTS = Path(__file__).parent / "data" / "codecontests_sample" / "problems.jsonl"
FLOAT_TASKS = {16, 17, 18, 19, 20, 21}


@pytest.mark.parametrize(
    "statement, tolerance",
    [
        # Codeforces in TACO and CodeContests, superscripts kept or flattened
        ("Your answer will be considered correct if its absolute or relative error does not exceed 10^{-6}.", 1e-6),
        ("Your answer is considered correct if its absolute or relative error does not exceed 10^{ - 9}.", 1e-9),
        ("The answer will be considered correct if the absolute or relative error doesn't exceed 10 - 6.", 1e-6),
        ("The absolute or relative measure of the inaccuracy of your answer should not exceed 10 - 6.", 1e-6),
        ("Print the answer with absolute or relative error no more than 10<sup>-4</sup>.", 1e-4),
        ("The answer is accepted if the absolute or relative error is at most 10⁻⁶.", 1e-6),
        # AtCoder and CodeChef, LaTeX and unicode minus
        (
            "Your output is considered correct when its absolute or relative error from the judge's output is at "
            "most $10^{-6}$.",
            1e-6,
        ),
        ("The output is judged correct if the absolute or relative error is at most 10^{−2}.", 1e-2),
        ("Your answer will be considered correct if it has an absolute error less than \\(10^{-3}\\).", 1e-3),
        ("Answers with an error of at most 5 \\cdot 10^{-7} are accepted.", 5e-7),
        ("Output with precision 1e-9 or better.", 1e-9),
        ("Your answer is correct if it differs from the jury's by at most 0.0001.", 1e-4),
        # LeetCode, as written on the site and as flattened in TACO
        ("Answers within 10^-5 of the actual answer will be accepted.", 1e-5),
        ("Answers within 10-5 of the actual answer will be accepted as correct.", 1e-5),
        ("Answers within 10**-6 of the actual value will be accepted as correct.", 1e-6),
        ("Answers within 10^(-4) of the actual answer will be considered accepted.", 1e-4),
        # the number first, the word after it in the same sentence
        ("Print the area; an absolute deviation of 10^{-6} is tolerated.", 1e-6),
        ("Your answer must be within 1e-6 absolute or 1e-4 relative of the answer.", 1e-4),
    ],
)
def test_recognised_phrasings(statement, tolerance):
    assert stated_tolerance(statement) == pytest.approx(tolerance, rel=1e-12)


@pytest.mark.parametrize(
    "statement",
    [
        "Print the answer modulo 10^9 + 7.",
        "Since the answer can be very large, print it modulo 109 + 7. Two arrays are considered different if "
        "they differ in at least one position.",
        "1 ≤ n ≤ 2·10^5, -10^9 ≤ a_i ≤ 10^9.",
        "Print the answer with exactly 6 digits after the decimal point.",
        "The coordinates are -10 - 5 and 3. Print the distance.",  # no word about error
        "Output 0.000001 if there is no solution.",
        "Your answer is considered correct if its absolute error does not exceed 0.5.",  # not a sane tolerance
        "The answer will be considered correct if its error is small. Output\n\n0.001",  # another sentence
        "Two values differ if their difference exceeds 10^{-20}.",  # out of range
        "The only difference between easy and hard versions is constraints; n ≤ 10^5.",
        "",
    ],
)
def test_not_a_tolerance(statement):
    assert stated_tolerance(statement) is None


def test_real_codeforces_statements():
    rows = [json.loads(line) for line in CODECONTESTS.read_text(encoding="utf-8").splitlines()]
    found = {i: stated_tolerance(r["question"]) for i, r in enumerate(rows)}
    assert {i for i, t in found.items() if t is not None} == FLOAT_TASKS
    assert all(found[i] == pytest.approx(1e-6) for i in FLOAT_TASKS)


def test_tolerance_is_part_of_the_problem_and_its_hash():
    row = {
        "question": "Print the mean; absolute or relative error up to 10^{-4} is allowed.",
        "input_output": json.dumps({"inputs": ["1\n"], "outputs": ["0.5\n"]}),
    }
    stated = normalise_row(0, row, "test")
    plain = normalise_row(0, {**row, "question": "Print the mean."}, "test")
    assert stated.float_tolerance == pytest.approx(1e-4) and plain.float_tolerance is None
    assert stated.content_hash() != plain.content_hash()


def test_bundled_samples_carry_their_statements_tolerance():
    by_id = {p.task_id: p for p in load_problems("samples").problems}
    assert by_id[1].float_tolerance == pytest.approx(1e-6)  # "10^{-6}", a stdin problem
    assert by_id[18].float_tolerance == pytest.approx(1e-9)  # LeetCode's "Answers within 10^-9"


@pytest.mark.parametrize(
    "statement",
    [
        "10" + " " * 200_000,
        "10^" + " " * 200_000,
        "10^{" + " " * 200_000,
        "2 *" + " " * 200_000 + "x",
        "1" * 200_000,
        "0." + "0" * 200_000,
        ("error" + "\n" * 50) * 2000,
    ],
)
def test_pathological_statements_take_linear_time(statement):
    start = time.perf_counter()
    assert stated_tolerance(statement) is None
    assert time.perf_counter() - start < 1.0  # quadratic backtracking would take minutes
