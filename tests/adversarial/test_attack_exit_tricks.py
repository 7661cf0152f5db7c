"""Leaving early: sys.exit / exit() / os._exit in every place a program can call them."""

import pytest

from conftest import stdin_problem
from tasks.types import MODE_CALL, Problem

ATTACK = "sys.exit / exit() / os._exit tricks"

STDIN = {  # code → expected status (answer is 3 for input "1 2")
    "print then sys.exit(0)": ("a, b = map(int, input().split())\nprint(a + b)\nimport sys\nsys.exit(0)\n", "passed"),
    "print then exit()": ("a, b = map(int, input().split())\nprint(a + b)\nexit()\n", "passed"),
    "sys.exit(0) before printing": ("import sys\nsys.exit(0)\nprint(3)\n", "wrong_answer"),
    "sys.exit(1) after printing": ("print(3)\nimport sys\nsys.exit(1)\n", "runtime_error"),
    "sys.exit('message')": ("print(3)\nimport sys\nsys.exit('bye')\n", "runtime_error"),
    "os._exit(0) without flushing": ("import os\nprint(3)\nos._exit(0)\n", "wrong_answer"),
    "os._exit(0) after flushing": ("import os, sys\nprint(3)\nsys.stdout.flush()\nos._exit(0)\n", "passed"),
    "SystemExit swallowed": ("try:\n    exit(5)\nexcept SystemExit:\n    pass\nprint(3)\n", "passed"),
    "exit code 120 (the engine's own)": ("print(3)\nimport sys\nsys.exit(120)\n", "runtime_error"),
    "exit in a thread": ("import threading, sys\nthreading.Thread(target=sys.exit).start()\nprint(3)\n", "passed"),
    "os.abort()": ("import os\nprint(3, flush=True)\nos.abort()\n", "runtime_error"),
}

CALL = {
    "sys.exit(0) inside the function": ("import sys\ndef f(a, b):\n    sys.exit(0)\n", "runtime_error"),
    "os._exit(0) inside the function": ("import os\ndef f(a, b):\n    os._exit(0)\n", "runtime_error"),
    "raise SystemExit in __del__ of the result": (
        "class R(int):\n    def __del__(self): raise SystemExit(0)\ndef f(a, b):\n    return R(a + b)\n",
        "wrong_answer",
    ),
}


_AS_SPECIFIED: dict[str, int] = {}


def _count(level, record):
    _AS_SPECIFIED[level] = _AS_SPECIFIED.get(level, 0) + 1
    record(
        level,
        f"{_AS_SPECIFIED[level]}/{len(STDIN) + len(CALL)} variants judged as specified "
        "(exit 0 = normal end; other codes, abort, no return value = runtime_error)",
    )


@pytest.mark.parametrize("case", sorted(STDIN))
def test_exit_in_stdin_programs(attack, level, record, case):
    code, expected = STDIN[case]
    r = attack.run(level, code, stdin_problem(["1 2\n"], ["3\n"]))
    assert r.status == expected, (case, r.detail)
    _count(level, record)


@pytest.mark.parametrize("case", sorted(CALL))
def test_exit_in_call_based_programs(attack, level, record, case):
    code, expected = CALL[case]
    r = attack.run(level, code, Problem(0, "exit", "", "", "f", MODE_CALL, [[1, 2]], [[3]]))
    assert r.status == expected, (case, r.detail)
    _count(level, record)
