"""Forged and hostile results: what a program returns or writes on the child's side channel.

The dispatcher must survive anything: deep or huge return values, integers past Python's digit
limit, random bytes and forged reports on the report fd, exit codes that once meant something
inside the engine. None of it may pass a program that did not produce the answer.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import stdin_problem
from tasks.types import MODE_CALL, Problem
from tasks.execution.child import REPORT_FD

ATTACK = "hostile results (deep/huge return values, forged reports, internal exit codes)"


def call_problem() -> Problem:
    return Problem(0, "channel", "", "", "f", MODE_CALL, [[1, 2]], [[3]])


RETURNS = {  # call-based code → expected status; the answer is 3
    "list nested 100 000 deep": "def f(a, b):\n    x = []\n    for _ in range(100000):\n        x = [x]\n    return x\n",
    "list nested 5 000 deep": "def f(a, b):\n    x = 3\n    for _ in range(5000):\n        x = [x]\n    return x\n",
    "int of 20 000 digits": "import sys\nsys.set_int_max_str_digits(0)\ndef f(a, b):\n    return 10 ** 20000\n",
    "float inf": "def f(a, b):\n    return float('inf')\n",
    "float nan": "def f(a, b):\n    return float('nan')\n",
    "string of 30 MB": "def f(a, b):\n    return 'x' * (30 << 20)\n",
    "dict with 200 000 keys": "def f(a, b):\n    return {str(i): i for i in range(200000)}\n",
}

STDIN = {  # stdin code → expected status; the answer is 3
    "exit code 122 (was: no entry point)": ("print(3)\nimport sys\nsys.exit(122)\n", "runtime_error"),
    "exit code 121 (was: memory)": ("print(3)\nimport sys\nsys.exit(121)\n", "runtime_error"),
    "exit code 123 (was: not plain data)": ("print(4)\nimport sys\nsys.exit(123)\n", "runtime_error"),
    "forged 'exit 0' report, exit 1": (
        f'import os\nprint(3, flush=True)\nos.write({REPORT_FD}, b\'{{"end": "exit", "code": 0}}\\n\')\nos._exit(1)\n',
        "runtime_error",
    ),
    "junk report, exit 0 with a wrong answer": (
        f"import os\nprint(4, flush=True)\nos.write({REPORT_FD}, b'\\x00' * 100000)\nos._exit(0)\n",
        "wrong_answer",
    ),
    "report fd closed": (f"import os\nos.close({REPORT_FD})\nprint(3)\n", "passed"),
}


def _cell(level, record, name, n):
    _cell.count = getattr(_cell, "count", {})
    _cell.count[level] = _cell.count.get(level, 0) + 1
    record(level, f"{_cell.count[level]}/{n} judged as specified; evaluator survived every one")


@pytest.mark.parametrize("case", sorted(RETURNS))
def test_hostile_return_values(attack, level, record, case):
    r = attack.run(level, RETURNS[case], call_problem(), timeout_s=4.0)
    assert r.status in ("wrong_answer", "output_limit", "memory_limit", "runtime_error"), (case, r.status, r.detail)
    assert len(r.detail) <= 400
    _cell(level, record, case, len(RETURNS) + len(STDIN))


@pytest.mark.parametrize("case", sorted(STDIN))
def test_forged_reports_and_exit_codes(attack, level, record, case):
    code, expected = STDIN[case]
    r = attack.run(level, code, stdin_problem(["1 2\n"], ["3\n"]))
    assert r.status == expected, (case, r.detail)
    _cell(level, record, case, len(RETURNS) + len(STDIN))


ENDINGS = ["", "import os\nos._exit(0)\n", "import sys\nsys.exit(3)\n", "raise ValueError\n"]


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(junk=st.binary(max_size=2000), ending=st.sampled_from(ENDINGS), call=st.booleans())
def test_random_bytes_on_the_report_fd_never_pass_or_crash(attack, level, junk, ending, call):
    """Whatever a program writes on the report fd, a program that did not produce 3 fails."""
    body = f"import os\nos.write({REPORT_FD}, {junk!r})\n"
    if call:
        code = "def f(a, b):\n" + "".join(f"    {line}\n" for line in (body + ending + "return 4\n").splitlines())
        r = attack.run(level, code, call_problem())
    else:
        r = attack.run(level, body + "print(4)\n" + ending, stdin_problem(["1 2\n"], ["3\n"]))
    assert r.status != "passed", (junk, ending, call)
