"""How a test outcome becomes a verdict: TACO's rules where TACO is right (README: "Deliberate differences from TACO's reference verdicts").

Pure functions; the execution engine never sees expected outputs, the dispatcher calls these.
Whatever a program prints or returns, judging it costs memory bounded by a window of its output
(tasks.judging.tokens) and time linear in what is compared: numbers are compared in Decimal, exactly or
with directed rounding, returned values are walked and rendered without recursion.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_DOWN,
    ROUND_UP,
    Clamped,
    Context,
    Decimal,
    DecimalException,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Underflow,
)
from typing import Any, Iterator

from tasks import defaults, statuses
from tasks.types import (
    JUDGE_CASE_INSENSITIVE,
    JUDGE_FLOAT_TOLERANCE,
    MODE_CALL,
    Problem,
)
from tasks.judging import tokens
from tasks.execution.runner import TestOutcome

# ASCII digits only: `\d` and Decimal() also read Arabic-Indic and other digits; no nan, inf or `_`.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# A token is read exactly or not at all: one whose exponent Decimal cannot hold is no number.
_EXACT = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, Overflow, Underflow, Clamped, Inexact, Rounded],
)
# |got - expected| rounded away from zero and the bound rounded toward it: rounding can only reject,
# never accept, a token farther than the tolerance; with traps off an overflow is Infinity.
_AWAY = Context(prec=34, rounding=ROUND_UP, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[])
_TOWARD = Context(prec=34, rounding=ROUND_DOWN, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[])
_ONE = Decimal(1)


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


def parse_number(token: str) -> Decimal | None:
    """The exact value of an ASCII decimal token (`-0.5`, `1e3`, `.5`), else None."""
    if not _NUMBER.fullmatch(token):
        return None
    try:
        return _EXACT.create_decimal(token)
    except DecimalException:
        return None


def numbers_equal(got: str, expected: str, tolerance: Decimal | None, any_number: bool = False) -> bool:
    """Whether both tokens are numbers that match: within tolerance · max(1, |expected|) when a
    tolerance is given and `expected` has a fraction or an exponent (or `any_number`), else equal
    in value (`1e3` = `1000`, `-0` = `0`)."""
    g, e = parse_number(got), parse_number(expected)
    if g is None or e is None:
        return False
    if tolerance is None or not (any_number or any(c in expected for c in ".eE")):
        return g == e
    distance = _AWAY.subtract(g, e).copy_abs()
    bound = _TOWARD.multiply(tolerance, max(_ONE, e.copy_abs()))
    return distance.is_finite() and distance <= bound


def _token_mismatch(
    index: int, got: str | tokens.LongToken, expected: str, tolerance: Decimal | None, any_number: bool
) -> str | None:
    text, comparable = got, True
    if isinstance(got, tokens.LongToken):
        # More than 4 bytes per character of `expected` decode to a longer text: decode only what
        # the message shows.
        comparable = got.nbytes <= 4 * len(expected)
        text = got.decode(None if comparable else 240)
    if comparable and (text == expected or numbers_equal(text, expected, tolerance, any_number)):
        return None
    return f"token {index}: expected '{_short(expected)}', got '{_short(text)}'"


def compare_stdout(actual: bytes | str, expected: str, judge: str, tolerance: float = 0.0) -> str | None:
    """None if the output `actual` (a program's stdout; a str is taken as its UTF-8 encoding) is
    accepted, else a short description of the first mismatch.

    Tokens are whitespace-separated and their counts must agree, so `5 5 5` never matches `5`. Two
    tokens match if equal, or if both are numbers that `numbers_equal` matches with `tolerance`
    (0: exact value equality). The float special judge (TACO's case 3) applies the tolerance, 1e-6
    if none is given, to every number, integers included. Tokens are compared as they are read,
    a window at a time, and reading stops at the first mismatch.
    """
    data = actual.encode("utf-8", "surrogatepass") if isinstance(actual, str) else actual
    lower = judge == JUDGE_CASE_INSENSITIVE
    float_judge = judge == JUDGE_FLOAT_TOLERANCE
    tolerance = tolerance or (defaults.FLOAT_TOLERANCE if float_judge else 0.0)
    tol = Decimal(repr(tolerance)) if tolerance > 0 else None
    got, want = tokens.chunks(data, lower), tokens.chunks(expected, lower)
    (g, got_end), (w, _) = next(got, ([], 0)), next(want, ([], 0))
    gi = wi = matched = 0
    while g and w:
        n = min(len(g) - gi, len(w) - wi)
        if g[gi : gi + n] != w[wi : wi + n]:
            for j in range(n):
                mismatch = _token_mismatch(matched + j + 1, g[gi + j], w[wi + j], tol, float_judge)
                if mismatch:
                    return mismatch
        matched, gi, wi = matched + n, gi + n, wi + n
        if gi == len(g):
            (g, got_end), gi = next(got, ([], got_end)), 0
        if wi == len(w):
            (w, _), wi = next(want, ([], 0)), 0
    if not g and not w:
        return None
    # One side ran out: count the rest of the other (the output's without splitting it).
    got_total = matched + len(g) - gi + tokens.count(data, got_end)
    want_total = matched + len(w) - wi + sum(len(chunk) for chunk, _ in want)
    return f"expected {want_total} tokens, got {got_total}"


def expected_return(output: Any) -> Any:
    """TACO wraps each expected return value in a one-element list."""
    if isinstance(output, list) and len(output) == 1:
        return output[0]
    return output


def _scalars_equal(actual: Any, expected: Any, tolerance: float) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if isinstance(expected, float) or isinstance(actual, float):
            try:
                return math.isclose(actual, expected, rel_tol=tolerance, abs_tol=tolerance)
            except OverflowError:  # an int beyond any float is close to no float
                return False
        return actual == expected
    return type(actual) is type(expected) and actual == expected


def values_equal(actual: Any, expected: Any, tolerance: float = defaults.CALL_FLOAT_REL_TOL) -> bool:
    """Plain-data equality: lists (tuples became lists) and dicts elementwise, floats with isclose,
    bools only equal bools. Iterative, so no nesting depth can raise."""
    pending = [(actual, expected)]
    while pending:
        a, e = pending.pop()
        if isinstance(e, list) and isinstance(a, list):
            if len(a) != len(e):
                return False
            pending.extend(zip(a, e))
        elif isinstance(e, dict) and isinstance(a, dict):
            if a.keys() != e.keys():
                return False
            pending.extend((a[k], e[k]) for k in e)
        elif not _scalars_equal(a, e, tolerance):
            return False
    return True


def _normalise_expected(value: Any) -> Any:
    # Expected values come from JSON, but be safe with tuples from other sources.
    if isinstance(value, tuple):
        return [_normalise_expected(v) for v in value]
    if isinstance(value, list):
        return [_normalise_expected(v) for v in value]
    return value


def _render_parts(container: list | dict) -> Iterator[Any]:
    """A container's JSON text as literal pieces (str) and values still to render (1-tuples)."""
    if isinstance(container, list):
        for i, item in enumerate(container):
            if i:
                yield ", "
            yield (item,)
        yield "]"
    else:
        for i, (key, item) in enumerate(container.items()):
            if i:
                yield ", "
            yield (key,)
            yield ": "
            yield (item,)
        yield "}"


def render(value: Any, limit: int = 60) -> str:
    """json.dumps(value) cut to `limit` characters, rendering no more of `value` than that takes:
    a returned value may be a 64 MiB string, a huge int or nested thousands deep."""
    out: list[str] = []
    size = 0
    stack: list[Iterator[Any]] = [iter([(value,)])]
    while stack and size <= limit:
        piece = next(stack[-1], None)
        if piece is None:
            stack.pop()
            continue
        if isinstance(piece, tuple):
            item = piece[0]
            if isinstance(item, (list, dict)):
                stack.append(_render_parts(item))
                piece = "[" if isinstance(item, list) else "{"
            elif isinstance(item, str):
                piece = json.dumps(item[:limit])
            else:
                try:
                    piece = json.dumps(item, default=repr)
                except ValueError:  # an int past Python's digit limit for str()
                    piece = f"<int of {item.bit_length()} bits>"
        out.append(piece)
        size += len(piece)
    return _short("".join(out), limit)


def compare_return(
    returned_json: str, expected_output: Any, tolerance: float = defaults.CALL_FLOAT_REL_TOL
) -> str | None:
    """None if the JSON a call-based program returned matches the expected output, else a short
    description; a return value that cannot be decoded is a mismatch, never an exception."""
    try:
        actual = json.loads(returned_json)
    except RecursionError:
        return "return value is nested too deeply to decode"
    except ValueError:  # not JSON, or an integer past Python's digit limit
        return "return value could not be decoded"
    expected = _normalise_expected(expected_return(expected_output))
    if values_equal(actual, expected, tolerance):
        return None
    return f"expected {render(expected)}, got {render(actual)}"


def stdout_tolerance(problem: Problem, run_tolerance: float) -> float:
    """The tolerance of a stdin problem's decimal answers: its statement's, else the run's. A run
    asking for 0 (exact) gets 0 except on TACO's float special judge (then 1e-6 or the statement's)."""
    if run_tolerance <= 0 and problem.judge != JUDGE_FLOAT_TOLERANCE:
        return 0.0
    return problem.float_tolerance or run_tolerance


def return_tolerance(problem: Problem, run_tolerance: float) -> float:
    """Returned floats are exact binary values: isclose within 1e-9, or the statement's tolerance
    (LeetCode's "answers within 10^-5 …") unless the run asked for exact comparison."""
    if run_tolerance > 0 and problem.float_tolerance:
        return problem.float_tolerance
    return defaults.CALL_FLOAT_REL_TOL


def judge_test(
    problem: Problem, index: int, outcome: TestOutcome, float_tolerance: float = defaults.FLOAT_TOLERANCE
) -> TestVerdict:
    """The verdict of one test; `float_tolerance` is the run's (JudgeConfig.float_tolerance)."""
    if outcome.status is not None:
        return TestVerdict(
            outcome.status, outcome.stderr_tail.strip()[-defaults.DETAIL_MAX_CHARS :], outcome.elapsed_ms
        )
    if problem.mode == MODE_CALL:
        mismatch = compare_return(
            outcome.returned or "", problem.outputs[index], return_tolerance(problem, float_tolerance)
        )
    else:
        mismatch = compare_stdout(
            outcome.stdout, problem.outputs[index], problem.judge, stdout_tolerance(problem, float_tolerance)
        )
    if mismatch is None:
        return TestVerdict(statuses.PASSED, "", outcome.elapsed_ms)
    return TestVerdict(statuses.WRONG_ANSWER, f"test {index + 1}: {mismatch}", outcome.elapsed_ms)
