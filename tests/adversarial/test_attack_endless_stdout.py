"""Endless output stops at the output cap (RLIMIT_FSIZE on the stdout memfd)."""

from conftest import stdin_problem

ATTACK = "endless stdout"


def test_endless_stdout_hits_the_cap(attack, level, record):
    r = attack.run(
        level, "import sys\nwhile True:\n    sys.stdout.write('spam' * 4096)\n", stdin_problem(["1\n"], ["1\n"])
    )
    assert r.status == "output_limit"
    record(level, "output_limit")


def test_endless_stderr_hits_the_cap(attack, level, record):
    r = attack.run(level, "import os\nwhile True:\n    os.write(2, b'x' * 65536)\n", stdin_problem(["1\n"], ["1\n"]))
    assert r.status == "output_limit"
    record(level, "output_limit", "endless stderr")
