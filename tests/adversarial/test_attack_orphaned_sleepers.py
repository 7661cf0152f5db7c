"""200 children, each in its own session, sleeping long after their parent has exited."""

from conftest import stdin_problem

ATTACK = "200 orphaned sleepers"

CODE = """
import os, sys, time
made = 0
for i in range(200):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        os.setsid()
        time.sleep(600)
        os._exit(0)
    made += 1
print("done")
sys.stderr.write(f"made {made} sleepers\\n")
"""


def test_orphaned_sleepers_are_all_killed(attack, level, record):
    r = attack.run(level, CODE, stdin_problem(["1\n"], ["done\n"]))
    assert r.status == "passed", r.detail
    made = int(r.stderr.split("made ")[1].split()[0]) if "made " in r.stderr else -1
    if level == "process":
        assert made > 0
    record(level, f"passed; {made} sleepers started, none survive" if made else "passed; fork denied")
