"""A program that never ends: a timeout, at the per-test deadline, whatever the level."""

from conftest import stdin_problem

ATTACK = "infinite loop"


def test_infinite_loop_times_out(attack, level, record):
    r = attack.run(level, "while True:\n    pass\n", stdin_problem(["1\n"], ["1\n"]))
    assert r.status == "timeout"
    assert r.elapsed_s < 4
    record(level, "timeout")
