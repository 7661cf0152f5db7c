"""Closing stdout and stderr (so nothing can be reported) and spinning is still a timeout."""

from conftest import stdin_problem

ATTACK = "closed stdout/stderr + spin"


def test_closed_stdout_then_spin(attack, level, record):
    code = "import os, sys\nos.close(1)\nos.close(2)\nsys.stdout = sys.stderr = None\nwhile True:\n    pass\n"
    r = attack.run(level, code, stdin_problem(["1\n"], ["1\n"]))
    assert r.status == "timeout"
    record(level, "timeout")
