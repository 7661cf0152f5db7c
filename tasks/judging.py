"""How a test outcome becomes a verdict: TACO's rules where TACO is right (DESIGN §4).

Pure functions; the execution engine never sees expected outputs, the dispatcher calls these.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from taco_eval import config, statuses
from taco_eval.types import (
    JUDGE_CASE_INSENSITIVE,
    JUDGE_FLOAT_TOLERANCE,
    MODE_CALL,
    Problem,
)
from tasks.execution.runner import TestOutcome

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class TestVerdict:
    status: str
    detail: str = ""
    elapsed_ms: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == statuses.PASSED


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _numbers_equal(a: str, b: str, tolerance: float | None) -> bool:
    if not (_NUMBER.fullmatch(a) and _NUMBER.fullmatch(b)):
        return False
    if tolerance is None:
        try:
            return Decimal(a) == Decimal(b)
        except InvalidOperation:
            return False
    x, y = float(a), float(b)
    diff = abs(x - y)
    return diff <= tolerance or diff <= tolerance * max(abs(x), abs(y))


def compare_stdout(actual: str, expected: str, judge: str) -> str | None:
    """None if `actual` is accepted, else a short description of the first mismatch.

    Tokens are whitespace-separated; two tokens match if equal, or if both are decimal numbers
    of equal value (`0.5` = `0.5000000`), or within 1e-6 for float-tolerance problems. Token
    counts must agree, so `5 5 5` never matches `5`.
    """
    got, want = actual.split(), expected.split()
    if judge == JUDGE_CASE_INSENSITIVE:
        got, want = [t.lower() for t in got], [t.lower() for t in want]
    if got == want:
        return None
    tolerance = config.FLOAT_TOLERANCE if judge == JUDGE_FLOAT_TOLERANCE else None
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w and not _numbers_equal(g, w, tolerance):
            return f"token {i + 1}: expected '{_short(w)}', got '{_short(g)}'"
    if len(got) != len(want):
        return f"expected {len(want)} tokens, got {len(got)}"
    return None


def expected_return(output: Any) -> Any:
    """TACO wraps each expected return value in a one-element list."""
    if isinstance(output, list) and len(output) == 1:
        return output[0]
    return output


def values_equal(actual: Any, expected: Any) -> bool:
    """Plain-data equality: lists (tuples became lists) elementwise, floats with isclose,
    bools only equal bools."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if isinstance(expected, float) or isinstance(actual, float):
            return math.isclose(actual, expected, rel_tol=config.CALL_FLOAT_REL_TOL, abs_tol=config.CALL_FLOAT_REL_TOL)
        return actual == expected
    if isinstance(expected, list) and isinstance(actual, list):
        return len(actual) == len(expected) and all(values_equal(a, e) for a, e in zip(actual, expected))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return actual.keys() == expected.keys() and all(values_equal(actual[k], expected[k]) for k in expected)
    if type(actual) is not type(expected):
        return False
    return actual == expected


def _normalise_expected(value: Any) -> Any:
    # Expected values come from JSON, but be safe with tuples from other sources.
    if isinstance(value, tuple):
        return [_normalise_expected(v) for v in value]
    if isinstance(value, list):
        return [_normalise_expected(v) for v in value]
    return value


def compare_return(returned_json: str, expected_output: Any) -> str | None:
    try:
        actual = json.loads(returned_json)
    except json.JSONDecodeError:
        return "return value could not be decoded"
    expected = _normalise_expected(expected_return(expected_output))
    if values_equal(actual, expected):
        return None
    return f"expected {_short(json.dumps(expected, default=repr))}, got {_short(json.dumps(actual))}"


def judge_test(problem: Problem, index: int, outcome: TestOutcome) -> TestVerdict:
    if outcome.status is not None:
        return TestVerdict(outcome.status, outcome.stderr_tail.strip()[-config.DETAIL_MAX_CHARS:], outcome.elapsed_ms)
    if problem.mode == MODE_CALL:
        mismatch = compare_return(outcome.returned or "", problem.outputs[index])
    else:
        actual = outcome.stdout.decode("utf-8", "replace")
        mismatch = compare_stdout(actual, problem.outputs[index], problem.judge)
    if mismatch is None:
        return TestVerdict(statuses.PASSED, "", outcome.elapsed_ms)
    return TestVerdict(statuses.WRONG_ANSWER, f"test {index + 1}: {mismatch}", outcome.elapsed_ms)
