"""1000 threads, after trying to leave its cgroups (a uid 0 without capabilities still owns the
cgroup files). Threads count as processes for every cap we have: the pids cgroup, and an
unprivileged uid's RLIMIT_NPROC. Where neither exists (root, no writable cgroups) the `process`
level cannot cap them: the test records that instead of asserting a cap."""

import os

from conftest import stdin_problem
from tasks.execution import sandbox
from tasks.execution.limits import Limits

ATTACK = "1000 threads (after trying to leave its cgroup)"

CODE = """
import glob, os, threading
escaped = []
for procs in glob.glob("/sys/fs/cgroup/cgroup.procs") + glob.glob("/sys/fs/cgroup/*/cgroup.procs"):
    try:
        with open(procs, "w") as fh:
            fh.write(str(os.getpid()))
        escaped.append(procs.split("/")[-2])
    except OSError:
        pass
threading.stack_size(64 * 1024)
release, started = threading.Event(), 0
try:
    for _ in range(1000):
        threading.Thread(target=release.wait, daemon=True).start()
        started += 1
except RuntimeError:
    pass
release.set()
print("escaped", ",".join(escaped) or "-", "threads", started)
"""


def test_thread_flood_is_capped(attack, level, record):
    pool = attack.pool(level)
    capped = pool.pids_limited or sandbox.drops_uid(level) or os.geteuid() != 0
    r = attack.run(level, CODE, stdin_problem(["1\n"], ["x\n"]))
    words = r.stdout.split()
    escaped, threads = words[1], int(words[3])
    if not capped:
        record(level, f"NOT capped: {threads} threads (root without a writable pids cgroup)")
        return
    assert escaped == "-", f"left its cgroup: {escaped}"
    assert threads < Limits().max_processes, r.stdout
    how = " and ".join(
        (["pids cgroup"] if pool.pids_limited else [])
        + (["the unprivileged uid's RLIMIT_NPROC"] if sandbox.drops_uid(level) else [])
    )
    record(level, f"capped at {threads} threads ({how}); could not leave its cgroup")
