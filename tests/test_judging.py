"""Comparison rules (DESIGN §4), including the cases TACO's reference gets wrong."""

import pytest

from taco_eval.types import JUDGE_CASE_INSENSITIVE, JUDGE_DEFAULT, JUDGE_FLOAT_TOLERANCE
from tasks.judging import compare_return, compare_stdout, expected_return, values_equal


@pytest.mark.parametrize("actual, expected", [
    ("0.5", "0.5000000"),
    ("1 2 3\n", "1 2 3"),
    ("  1\t2\n\n3  ", "1 2 3\n"),
    ("-0", "0"),
    ("1e3", "1000"),
    ("YES", "YES"),
])
def test_default_rule_accepts(actual, expected):
    assert compare_stdout(actual, expected, JUDGE_DEFAULT) is None


@pytest.mark.parametrize("actual, expected", [
    ("5 5 5", "5"),  # TACO accepts this
    ("0 1", "1\n0\n0\n1"),  # and this
    ("", "1"),
    ("yes", "YES"),
    ("0.5000001", "0.5"),
    ("1 2", "2 1"),
    ("12", "1 2"),
])
def test_default_rule_rejects(actual, expected):
    assert compare_stdout(actual, expected, JUDGE_DEFAULT) is not None


def test_case_insensitive_judge():
    assert compare_stdout("yes\nNo", "YES\nno", JUDGE_CASE_INSENSITIVE) is None
    assert compare_stdout("yes", "NO", JUDGE_CASE_INSENSITIVE) is not None


def test_float_tolerance_judge():
    assert compare_stdout("3.1415926", "3.14159265358", JUDGE_FLOAT_TOLERANCE) is None
    assert compare_stdout("1000000.5", "1000000.0", JUDGE_FLOAT_TOLERANCE) is None  # relative 5e-7
    assert compare_stdout("3.1416", "3.14159265358", JUDGE_FLOAT_TOLERANCE) is not None
    assert compare_stdout("abc 1.0", "abd 1.0", JUDGE_FLOAT_TOLERANCE) is not None


def test_mismatch_detail_names_the_token():
    assert compare_stdout("1 2 4", "1 2 3", JUDGE_DEFAULT) == "token 3: expected '3', got '4'"


def test_expected_return_unwraps_one_element_list_only():
    assert expected_return([2]) == 2
    assert expected_return([[1, 2]]) == [1, 2]
    assert expected_return([1, 2]) == [1, 2]


def test_call_comparison_does_not_accept_the_wrapper():
    assert compare_return("2", [2]) is None
    assert compare_return("[2]", [2]) is not None  # TACO's reference accepts this


def test_call_values():
    assert values_equal([[1, 2], [3]], [[1, 2], [3]])
    assert values_equal(0.1 + 0.2, 0.3)
    assert values_equal(2, 2.0)
    assert not values_equal(True, 1)
    assert not values_equal([1, 2], [1, 2, 3])
    assert values_equal({"a": [1]}, {"a": [1]})
    assert not values_equal("1", 1)
