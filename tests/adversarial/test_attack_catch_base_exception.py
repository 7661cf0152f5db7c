"""A loop that swallows every exception and ignores every catchable signal still times out: the
deadline is enforced from outside with SIGKILL (TACO's own SIGALRM guard hangs here)."""

from conftest import stdin_problem

ATTACK = "loop catching BaseException, signals ignored"

CODE = """
import signal
for s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU, signal.SIGUSR1):
    signal.signal(s, signal.SIG_IGN)
while True:
    try:
        while True:
            pass
    except BaseException:
        pass
"""


def test_swallowing_everything_still_times_out(attack, level, record):
    r = attack.run(level, CODE, stdin_problem(["1\n"], ["1\n"]))
    assert r.status == "timeout"
    record(level, "timeout")
