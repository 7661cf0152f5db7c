from math import comb

import pytest

from tasks import statuses
from tasks.types import JUDGE_NONDETERMINISTIC, MalformedRow, ProgramResult
from tasks.metrics import compute_metrics, pass_at_k
from tests.helpers import stdin_problem


@pytest.mark.parametrize("n, c, k", [(10, 3, 1), (10, 3, 5), (20, 0, 10), (200, 17, 100), (5, 5, 5), (7, 2, 6)])
def test_pass_at_k_matches_the_combinatorial_definition(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))


def test_pass_at_k_refuses_k_above_n():
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 5)


def _result(task_id, idx, passed):
    status = statuses.PASSED if passed else statuses.WRONG_ANSWER
    return ProgramResult(task_id, idx, "x", passed, status, 1, 1, [1 if passed else 0])


def test_metrics_groups_and_taco_shape():
    p0 = stdin_problem(["1"], ["1"], task_id=0, difficulty="EASY", skills=("Sorting", "Greedy algorithms"))
    p1 = stdin_problem(["1"], ["1"], task_id=1, difficulty="HARD", skills=("Sorting",))
    p2 = stdin_problem(["1"], ["1"], task_id=2, difficulty="HARD", skills=(), judge=JUDGE_NONDETERMINISTIC)
    results = (
        [_result(0, i, i < 2) for i in range(4)]
        + [_result(1, i, False) for i in range(4)]
        + [_result(2, i, True) for i in range(4)]
    )
    malformed = [MalformedRow(3, "t3", "no tests")]
    metrics, taco = compute_metrics([p0, p1, p2], malformed, results, [1, 2, 10])
    assert metrics["ks"] == [1, 2]  # 10 > 4 samples: not reported
    assert metrics["pass@1"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert metrics["by_difficulty"]["HARD"]["pass@1"] == pytest.approx(0.5)
    assert metrics["by_skill"]["Sorting"]["num_problems"] == 2
    assert metrics["nondeterministic_output"]["task_ids"] == [2]
    assert metrics["nondeterministic_output"]["metrics_without_them"]["pass@1"] == pytest.approx(0.25)
    assert metrics["skipped_problems"][0]["reason"] == "no tests"
    assert set(taco) == {"pass@1", "pass@2", "detail"}
    assert taco["detail"]["pass@1"] == {"0": 0.5, "1": 0.0, "2": 1.0}
    assert taco["pass@2"] == pytest.approx((1 - comb(2, 2) / comb(4, 2) + 0 + 1) / 3)
