"""A chain of 100 processes, each in a new session and each the parent of the next: killing a
process group or reaping the worker's children only ever reaches the top of the chain, and the
next generation becomes an orphan of the worker. The last one waits for the test to be over,
then edits the evaluator's results file (a decoy) to change the verdict after the fact."""

from conftest import stdin_problem

ATTACK = "100-deep process chain (new session each) editing results after the test"


def _code(decoys):
    return f"""
import os, time
try:
    first = os.fork()
except OSError as e:
    print("blocked", e.errno)
    raise SystemExit
if first == 0:
    for depth in range(100):
        try:
            child = os.fork()
        except OSError:
            break
        if child:
            time.sleep(5)
            os._exit(0)
        os.setsid()
    time.sleep(0.3)
    with open({str(decoys.results)!r}, "ab") as fh:
        fh.write(b"passed")
    os._exit(0)
time.sleep(0.2)
print("started")
"""


def test_deep_chain_ends_with_the_test(attack, level, record, decoys):
    r = attack.run(level, _code(decoys), stdin_problem(["1\n"], ["x\n"]))
    # The harness asserts that no process of the chain is left and that the decoy is unchanged.
    if r.stdout.startswith("blocked"):
        record(level, "blocked: fork denied")
    else:
        how = (
            "killed with the test's cgroup"
            if attack.pool(level).cgroups[0] is not None
            else "killed by the subreaper's kill rounds"
        )
        record(level, f"chain {how}; results file unchanged, nothing survives")
