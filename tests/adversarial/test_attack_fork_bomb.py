"""A fork bomb: every process forks in a loop forever.

Only run where it is contained: seccomp (fork denied), or a per-worker pids cgroup / unprivileged
uid with RLIMIT_NPROC (the process count is capped). As root without a pids cgroup the `process`
level cannot contain it (RLIMIT_NPROC does not bind root), so it is skipped there, never run.
"""

import pytest

from conftest import stdin_problem
from tasks.execution import sandbox

ATTACK = "fork bomb"

BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""

PROBE = """
import os
try:
    pid = os.fork()
except OSError as e:
    print("blocked", e.errno)
else:
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    print("forked")
"""


def test_fork_bomb_is_contained(attack, level, record):
    pool = attack.pool(level)
    capped = pool.pids_limited or sandbox.drops_uid(level)
    probe = attack.run(level, PROBE, stdin_problem(["1\n"], ["x\n"]))
    fork_blocked = probe.stdout.startswith("blocked")
    if level == sandbox.SECCOMP:
        assert fork_blocked, probe.stdout
    if not (fork_blocked or capped):
        record(level, "not run: cannot be contained here (root without a pids cgroup)")
        pytest.skip("fork bomb not contained at this level on this machine (root, no pids cgroup): not run")
    r = attack.run(level, BOMB, stdin_problem(["1\n"], ["1\n"]))
    assert r.status == "timeout"
    how = "fork denied by seccomp" if fork_blocked else "process count capped (pids cgroup)"
    record(level, f"timeout; {how}; nothing survives")
