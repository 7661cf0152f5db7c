"""The classic escape from a process-group kill: fork, setsid, fork again, parent exits."""

from conftest import stdin_problem

ATTACK = "setsid double-fork escape"

CODE = """
import os, time
try:
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(600)
        os._exit(0)
except OSError:
    print("blocked")
else:
    time.sleep(0.2)
    print("escaped")
"""


def test_double_fork_escapee_does_not_survive(attack, level, record):
    r = attack.run(level, CODE, stdin_problem(["1\n"], ["blocked\n"]))
    if level == "process":
        assert r.status == "wrong_answer" and "escaped" in r.stdout
        record(
            level,
            "escapee killed with the test's cgroup"
            if attack.pool(level).cgroups[0] is not None
            else "escapee reaped by the subreaper worker and killed",
        )
    else:
        assert r.status == "passed", r.detail
        record(level, "fork denied")
