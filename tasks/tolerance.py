"""The numeric tolerance a problem statement grants float answers ("absolute or relative error does
not exceed 10^{-6}"), read once when the problem is loaded (README: "Deliberate differences from TACO's reference verdicts").

Statements write the power of ten in many ways: `10^{-6}`, `$10^{-6}$`, `10^-6`, `10^(-6)`, `10**-6`,
`10⁻⁶`, `10<sup>-6</sup>`, `1e-6`, `0.000001`, with an optional factor (`2·10^{-6}`), and — where an
HTML superscript was flattened, as in CodeContests' Codeforces statements — `10 - 6` or `10-6`.
Such a number counts only in the same sentence as a word about error (error, precision, accuracy,
tolerance, within, differ, deviation), so "modulo 10^9 + 7" or a constraint `-10 - 5 ≤ x` never
counts, and only values in a sane range do.
"""

from __future__ import annotations

import re

MIN_TOLERANCE = 1e-15
MAX_TOLERANCE = 1e-1

_MINUS = "-−–"
_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_FACTOR = r"(?:(?P<factor>[0-9]+(?:\.[0-9]+)?)\s*(?:[*x×·⋅]|\\cdot|\\times)\s*)?"
# No two unbounded repeats can share the same characters (a statement of spaces must not take
# quadratic time): brackets and signs sit between them.
_POWER = re.compile(
    r"(?<![0-9.])" + _FACTOR + r"10(?:"
    rf"\s*(?:\^|\*\*)\s*(?:[{{(]\s*)?[{_MINUS}]\s*(?P<caret>[0-9]{{1,2}})(?![0-9])"  # 10^{-6}, 10^-6, 10**-6
    rf"|\s*<sup>\s*[{_MINUS}]\s*(?P<html>[0-9]{{1,2}})(?![0-9])"
    r"|⁻(?P<super>[⁰¹²³⁴⁵⁶⁷⁸⁹]{1,2})(?![⁰¹²³⁴⁵⁶⁷⁸⁹])"
    rf"|[ \t]*[{_MINUS}][ \t]*(?P<flat>[0-9]{{1,2}})(?![0-9]|\.[0-9])"  # a flattened superscript
    r")"
    r"|(?<![0-9.])(?P<mantissa>[0-9]+(?:\.[0-9]+)?)[eE][" + _MINUS + r"](?P<e>[0-9]{1,2})(?![0-9])"
    r"|(?<![0-9.])(?P<decimal>0\.0*[1-9][0-9]*)(?![0-9])",
)
_ERROR_WORD = re.compile(r"error|precis|accura|toleran|within|differ(?!ent)|deviat", re.IGNORECASE)
# A sentence ends at . ! ? followed by a space and a capital, or at a blank line; decimals and
# "e.g. x" do not end one.
_SENTENCE_END = re.compile(r"[.!?]\s+[A-Z]|\n\s*\n")
_BEFORE, _AFTER = 160, 80  # characters searched for an error word on each side of the number


def _value(m: re.Match[str]) -> float:
    if m["decimal"]:
        return float(m["decimal"])
    if m["mantissa"]:
        return float(f"{m['mantissa']}e-{m['e']}")
    exponent = m["caret"] or m["html"] or m["flat"] or m["super"].translate(_SUPERSCRIPT_DIGITS)
    return float(f"{m['factor'] or 1}e-{exponent}")


def _near_error_word(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - _BEFORE) : start]
    words = list(_ERROR_WORD.finditer(before))
    if words and not _SENTENCE_END.search(before, words[-1].end()):
        return True
    after = text[end : end + _AFTER]
    word = _ERROR_WORD.search(after)
    return word is not None and not _SENTENCE_END.search(after, 0, word.start())


def stated_tolerance(statement: str) -> float | None:
    """The largest tolerance the statement grants (a statement allowing "absolute error 10^{-4} or
    relative error 10^{-6}" accepts an answer meeting either), or None if it states none."""
    found = [
        v
        for m in _POWER.finditer(statement)
        if _near_error_word(statement, m.start(), m.end()) and MIN_TOLERANCE <= (v := _value(m)) <= MAX_TOLERANCE
    ]
    return max(found, default=None)
