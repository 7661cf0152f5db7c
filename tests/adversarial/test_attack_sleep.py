"""Sleeping uses no CPU, so only the wall-clock deadline catches it."""

from conftest import stdin_problem

ATTACK = "sleep"


def test_sleep_times_out_on_the_wall_clock(attack, level, record):
    r = attack.run(level, "import time\ntime.sleep(3600)\n", stdin_problem(["1\n"], ["1\n"]))
    assert r.status == "timeout"
    assert r.elapsed_s < 4
    record(level, "timeout")
