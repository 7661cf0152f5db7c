"""Comparison rules (README: "Deliberate differences from TACO's reference verdicts"), including the cases TACO's reference gets wrong."""

import json
import tracemalloc
from decimal import Context, Decimal
from fractions import Fraction
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.types import (
    JUDGE_CASE_INSENSITIVE,
    JUDGE_DEFAULT,
    JUDGE_FLOAT_TOLERANCE,
    JUDGES,
    MODE_CALL,
    MODE_STDIN,
    Problem,
)
from tasks.judging import tokens
from tasks.execution.runner import TestOutcome as Outcome  # not collected as a test class
from tasks.judging.rules import (
    compare_return,
    compare_stdout,
    expected_return,
    judge_test,
    numbers_equal,
    parse_number,
    render,
    values_equal,
)
from tasks.tolerance import stated_tolerance


@pytest.mark.parametrize(
    "actual, expected",
    [
        ("0.5", "0.5000000"),
        ("1 2 3\n", "1 2 3"),
        ("  1\t2\n\n3  ", "1 2 3\n"),
        ("-0", "0"),
        ("1e3", "1000"),
        ("YES", "YES"),
    ],
)
def test_default_rule_accepts(actual, expected):
    assert compare_stdout(actual, expected, JUDGE_DEFAULT) is None


@pytest.mark.parametrize(
    "actual, expected",
    [
        ("5 5 5", "5"),  # TACO accepts this
        ("0 1", "1\n0\n0\n1"),  # and this
        ("", "1"),
        ("yes", "YES"),
        ("0.5000001", "0.5"),
        ("1 2", "2 1"),
        ("12", "1 2"),
    ],
)
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


# --- floats ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "actual, expected",
    [
        ("32.833333333333336", "32.8333333333"),  # Python's repr against the jury's 10 digits
        ("1.532000000000", "1.53200000000000002842"),
        ("0.5000005", "0.5"),  # 5e-7 absolute
        ("1000000.5", "1000000.0"),  # 5e-7 relative
        ("2e-7", "0.0"),
        ("1E+3", "1000.0000001"),  # any numeric spelling of the produced token
        ("-0.0000001", "0.0"),
    ],
)
def test_decimal_expected_tokens_match_within_the_tolerance(actual, expected):
    assert compare_stdout(actual, expected, JUDGE_DEFAULT, 1e-6) is None
    assert compare_stdout(actual, expected, JUDGE_DEFAULT) is not None  # 0: exact value equality


@pytest.mark.parametrize(
    "actual, expected",
    [
        ("1.0000011", "1.0"),  # absolute error 1.1e-6 where |expected| <= 1
        ("1000001.5", "1000000.0"),  # relative 1.5e-6
        ("3.0000001", "3"),  # integer expected tokens stay exact
        ("1000.0000001", "1000"),
        ("0.5", "1/2"),
        ("0.5x", "0.5"),
        ("", "0.5"),
    ],
)
def test_outside_the_tolerance_or_not_decimal(actual, expected):
    assert compare_stdout(actual, expected, JUDGE_DEFAULT, 1e-6) is not None


def test_the_tolerance_is_inclusive_and_cannot_be_steered_by_digits():
    assert compare_stdout("1.000001", "1.0", JUDGE_DEFAULT, 1e-6) is None
    assert compare_stdout("1.000001" + "0" * 60 + "1", "1.0", JUDGE_DEFAULT, 1e-6) is not None
    assert compare_stdout("0.999999" + "9" * 400, "1.0", JUDGE_DEFAULT, 1e-6) is None
    assert compare_stdout("1.5" + "0" * 400 + "1", "1.5", JUDGE_DEFAULT, 1e-6) is None


def test_float_special_judge_applies_the_tolerance_to_integers_too():
    assert compare_stdout("2.0000001", "2", JUDGE_FLOAT_TOLERANCE) is None
    assert compare_stdout("2.0001", "2", JUDGE_FLOAT_TOLERANCE, 1e-3) is None
    assert compare_stdout("2.0001", "2", JUDGE_FLOAT_TOLERANCE) is not None


def _float_problem(question="Print it.", judge=JUDGE_DEFAULT, mode=MODE_STDIN, outputs=("0.5\n",)):
    return Problem(
        0,
        "p",
        question,
        "",
        "f" if mode == MODE_CALL else None,
        mode,
        [""],
        list(outputs),
        judge=judge,
        float_tolerance=stated_tolerance(question),
    )


@pytest.mark.parametrize(
    "question, judge, run_tolerance, printed, passes",
    [
        ("Print it.", JUDGE_DEFAULT, 1e-6, b"0.5000009", True),
        ("Print it.", JUDGE_DEFAULT, 1e-6, b"0.50001", False),
        ("Print it.", JUDGE_DEFAULT, 0.0, b"0.5000009", False),
        ("Print it.", JUDGE_DEFAULT, 1e-4, b"0.50001", True),
        # the statement's tolerance takes precedence over the run's, in both directions
        ("Absolute or relative error up to 10^{-4} is accepted.", JUDGE_DEFAULT, 1e-6, b"0.50001", True),
        ("Your answer must have an absolute error of at most 1e-9.", JUDGE_DEFAULT, 1e-6, b"0.5000009", False),
        # a run asking for 0 keeps TACO's float special judge, at the statement's tolerance or 1e-6
        ("Print it.", JUDGE_FLOAT_TOLERANCE, 0.0, b"0.5000009", True),
        ("Print it.", JUDGE_FLOAT_TOLERANCE, 0.0, b"0.50001", False),
        ("Absolute or relative error up to 10^{-4} is accepted.", JUDGE_FLOAT_TOLERANCE, 0.0, b"0.50001", True),
        ("Absolute or relative error up to 10^{-4} is accepted.", JUDGE_DEFAULT, 0.0, b"0.50001", False),
    ],
)
def test_tolerance_in_use(question, judge, run_tolerance, printed, passes):
    verdict = judge_test(_float_problem(question, judge), 0, Outcome(None, stdout=printed), run_tolerance)
    assert verdict.passed is passes, verdict.detail


def test_call_based_floats_use_the_statements_tolerance():
    problem = _float_problem(
        "Answers within 10^-5 of the actual answer will be accepted.", mode=MODE_CALL, outputs=([2.0],)
    )
    assert judge_test(problem, 0, Outcome(None, returned="2.000004")).passed
    assert not judge_test(problem, 0, Outcome(None, returned="2.000004"), 0.0).passed
    plain = _float_problem(mode=MODE_CALL, outputs=([2.0],))
    assert not judge_test(plain, 0, Outcome(None, returned="2.000004")).passed
    assert judge_test(plain, 0, Outcome(None, returned="2.0000000001")).passed


# --- numbers cannot be gamed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "actual, expected",
    [
        ("٣", "3"),  # Arabic-Indic digit three: Python's \d and Decimal() read it as 3
        ("٣.٥", "3.5"),
        ("３", "3"),  # fullwidth
        ("1_000", "1000"),
        ("1e999", "1.5"),
        ("9" * 400, "1.5"),
        ("-" + "9" * 400 + ".0", "1.5"),
        ("1e99999999999999999999", "1.5"),  # past Decimal's exponent range: no number
        ("1e-99999999999999999999", "0"),  # would underflow to 0: no number, not "equal to 0"
        ("inf", "1.5"),
        ("infinity", "1e308"),
        ("nan", "0.0"),
        ("NaN", "nan0"),
        ("0x10", "16"),
    ],
)
def test_only_finite_ascii_decimals_are_numbers(actual, expected):
    assert compare_stdout(actual, expected, JUDGE_DEFAULT, 1e-6) is not None
    assert compare_stdout(actual, expected, JUDGE_FLOAT_TOLERANCE, 1e-1) is not None


def test_long_numbers_compare_by_value_without_int():
    big = "1" * 5000  # past Python's 4300-digit limit of int(str)
    assert compare_stdout(big, big[:-1] + "2", JUDGE_DEFAULT, 1e-6) is not None
    assert compare_stdout("0" + big, big, JUDGE_DEFAULT) is None  # equal value, no ValueError
    assert compare_stdout(big + ".000", big, JUDGE_DEFAULT) is None
    assert compare_stdout(big + "e-5000", "0.1111", JUDGE_DEFAULT, 1e-4) is None


def test_non_numbers_still_match_as_text():
    assert compare_stdout("inf nan ٣", "inf nan ٣", JUDGE_DEFAULT, 1e-6) is None


number_tokens = st.from_regex(
    r"[+-]?(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})(?:[eE][+-]?[0-9]{1,2})?", fullmatch=True
)
odd_tokens = st.sampled_from(
    [
        "1e999",
        "-1e999",
        "1e-999",
        "nan",
        "inf",
        "-inf",
        "Infinity",
        "1_0",
        "٣",
        "-0",
        "1e99999999999999999999",
        "0e99999999999999999999",
        ".",
        "+",
        "e5",
        "1e",
        "\ufffd",
    ]
)
any_tokens = st.one_of(number_tokens, odd_tokens, st.text(max_size=30))
tolerances = st.sampled_from([0.0, 1e-9, 1e-6, 1e-3, 0.5])


@settings(max_examples=500, deadline=None)
@given(
    got=st.one_of(any_tokens.map(str.encode), st.binary(max_size=40)),
    expected=any_tokens,
    tolerance=tolerances,
    judge=st.sampled_from(JUDGES),
)
def test_random_tokens_never_crash_the_comparator(got, expected, tolerance, judge):
    result = compare_stdout(got, expected, judge, tolerance)
    assert result is None or len(result) <= 160


@settings(max_examples=1000, deadline=None)
@given(got=st.one_of(number_tokens, odd_tokens), expected=st.one_of(number_tokens, odd_tokens), tolerance=tolerances)
def test_a_token_never_matches_a_value_farther_than_the_tolerance(got, expected, tolerance):
    def value(token):
        return None if parse_number(token) is None else Fraction(Decimal(token))

    if compare_stdout(got, expected, JUDGE_FLOAT_TOLERANCE, tolerance) is None and got != expected:
        g, e = value(got), value(expected)
        assert g is not None and e is not None
        assert abs(g - e) <= Fraction(repr(tolerance or 1e-6)) * max(1, abs(e))


@settings(max_examples=300, deadline=None)
@given(expected=number_tokens, offset=st.fractions(min_value=-1, max_value=1), tolerance=st.sampled_from([1e-6, 1e-3]))
def test_a_number_within_the_tolerance_matches(expected, offset, tolerance):
    e = Fraction(Decimal(expected))
    got = e + offset * Fraction(repr(tolerance)) * max(1, abs(e)) / 2
    token = str(Context(prec=60).divide(Decimal(got.numerator), Decimal(got.denominator)))
    assert numbers_equal(token, expected, Decimal(repr(tolerance)), any_number=True), token


# --- streaming: bounded memory, same tokens and messages ------------------------------------------


def _reference(stdout: bytes, expected: str, judge: str) -> str | None:
    """compare_stdout as it was: whole lists of tokens (numbers through the same number rule)."""
    got, want = stdout.decode("utf-8", "replace").split(), expected.split()
    if judge == JUDGE_CASE_INSENSITIVE:
        got, want = [t.lower() for t in got], [t.lower() for t in want]
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w and not numbers_equal(g, w, None):
            return (
                f"token {i + 1}: expected '{w[:59] + '…' if len(w) > 60 else w}', got "
                f"'{g[:59] + '…' if len(g) > 60 else g}'"
            )
    return None if len(got) == len(want) else f"expected {len(want)} tokens, got {len(got)}"


# Every separator of str.split(), lookalikes that are not, multi-byte characters, invalid UTF-8.
pieces = st.sampled_from(
    [
        " ",
        "\n",
        "\t",
        "\x1c",
        "\x85",
        "\xa0",
        "\u2003",
        "\u3000",
        "\u200b",
        "\ufeff",
        "a",
        "B",
        "Σ",
        "İ",
        "é",
        "字",
        "😀",
        "1",
        "0.5",
        "-0",
        "1e3",
        "1000",
    ]
)
outputs = st.lists(
    st.one_of(pieces.map(str.encode), st.sampled_from([b"\xff", b"\xc2", b"\xe2\x80", b"\x80"])), max_size=30
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(
    stdout=outputs,
    expected=st.lists(pieces, max_size=30).map("".join),
    judge=st.sampled_from([JUDGE_DEFAULT, JUDGE_CASE_INSENSITIVE]),
    window=st.integers(1, 9),
)
def test_streaming_gives_the_whole_list_verdict_and_message(stdout, expected, judge, window):
    with patch.object(tokens, "WINDOW", window):  # windows cut everywhere, long tokens everywhere
        assert compare_stdout(stdout, expected, judge) == _reference(stdout, expected, judge)
        assert compare_stdout(stdout, stdout.decode("utf-8", "replace"), judge) is None
        assert tokens.count(stdout) == len(stdout.decode("utf-8", "replace").split())


def test_separators_are_exactly_str_split_ones():
    assert set(tokens.SPACES) == {c for c in map(chr, range(0x110000)) if c.isspace()}


def test_huge_output_costs_a_window_of_memory():
    stdout = b"10 " * (4 * 2**20 // 3)  # 4 MiB, 1.4 M tokens: 80 MiB as one list of str, 160 MiB for both sides
    same, one_token = stdout.decode(), b"7" * len(stdout)
    tracemalloc.start()
    try:
        assert compare_stdout(stdout, "10 10 10", JUDGE_DEFAULT) == f"expected 3 tokens, got {len(stdout) // 3}"
        assert compare_stdout(stdout, same, JUDGE_DEFAULT) is None
        assert compare_stdout(one_token, "7", JUDGE_DEFAULT).startswith("token 1: expected '7', got '777")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # a window of each side: 87 k tokens


def test_a_long_token_is_decoded_only_if_it_could_match():
    long = "x" * (3 * tokens.WINDOW)
    assert compare_stdout(long.encode() + b" 1", long + " 1", JUDGE_DEFAULT) is None
    assert compare_stdout(long.upper().encode(), long, JUDGE_CASE_INSENSITIVE) is None
    assert (
        compare_stdout(long.encode(), long[:-1] + "y", JUDGE_DEFAULT)
        == f"token 1: expected '{'x' * 59}…', got '{'x' * 59}…'"
    )
    # a prefix as long as the expected token does not make it equal
    assert compare_stdout(long.encode(), "x" * 240, JUDGE_DEFAULT) is not None


# --- call-based: hostile return values ------------------------------------------------------------


@pytest.mark.parametrize(
    "returned, message",
    [
        ("[" * 100_000 + "]" * 100_000, "return value is nested too deeply to decode"),
        ("1" * 5000, "return value could not be decoded"),  # past Python's int digit limit
        ("{", "return value could not be decoded"),
        ("", "return value could not be decoded"),
    ],
)
def test_undecodable_return_values_are_wrong_answers(returned, message):
    assert compare_return(returned, [1]) == message


def test_hostile_but_decodable_return_values_give_short_messages():
    deep = "[" * 900 + "]" * 900
    assert compare_return(deep, [[1]]).startswith("expected [1], got [[[[")
    assert compare_return(json.dumps("a" * 10**7), ["b"]) == f'expected "b", got "{"a" * 58}…'
    assert compare_return(str(10**4000), [1.5]).startswith("expected 1.5, got 1000")  # no OverflowError
    assert len(compare_return(json.dumps([list(range(10**5))] * 50), [[1]])) <= 100
    assert compare_return("Infinity", [1.5]) == "expected 1.5, got Infinity"
    assert compare_return("NaN", [float("nan")]) is not None


@pytest.mark.parametrize(
    "value",
    [
        [1, 2.5, None, True, 'x\n"y"', {"k": [1, {"z": False}]}],
        {},
        [],
        "é",
        -0.0,
        float("inf"),
        10**30,
    ],
)
def test_render_is_json_dumps_for_small_values(value):
    assert render(value, limit=200) == json.dumps(value)


def test_render_cuts_huge_values():
    assert render({"k": "v" * 1000}) == '{"k": "' + "v" * 52 + "…"
    assert render(10**5000) == "<int of 16610 bits>"
