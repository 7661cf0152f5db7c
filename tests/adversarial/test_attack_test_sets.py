"""Reading another problem's tests through the worker's test sets.

A worker keeps the sealed memfds of the last problems it ran (tasks.execution.testdata). A test
child closes every descriptor it inherits before the program starts; what is left is the
worker's /proc/<pid>/fd, which at the strong levels a child cannot open. (Test sets hold inputs
only: expected outputs never reach a worker.)"""

import os
import secrets

from conftest import stdin_problem

from tasks.judging import rules as judging
from tasks.execution.worker import ProgramJob

ATTACK = "read another problem's test inputs"

SCAN = """
import os, re
found = []
pattern = re.compile(rb"VICTIM-[0-9a-f]{16}")
for fd in range(4, 1024):  # 0-3: its stdio and report channel
    try:
        m = pattern.search(os.pread(fd, 1 << 22, 0))
        if m:
            found.append(f"fd {fd}: {m.group().decode()}")
    except OSError:
        pass
try:
    names = os.listdir(f"/proc/{os.getppid()}/fd")
except OSError as e:
    names, found = [], found + [f"listing denied {e.errno}"]
for name in names:
    try:
        with open(f"/proc/{os.getppid()}/fd/{name}", "rb") as fh:
            m = pattern.search(fh.read(1 << 22))
        if m:
            found.append(m.group().decode())
    except OSError:
        pass
print(";".join(found) or "nothing")
"""


def test_reading_the_workers_other_test_sets(attack, level, record):
    victim_secret = "VICTIM-" + secrets.token_hex(8)
    victim = stdin_problem([f"{victim_secret}\n"], ["ok\n"])
    attacker = stdin_problem(["1\n"], ["nothing\n"])
    pool = attack.pool(level)
    outcomes = []

    def judge(job, index, outcome):
        problem = victim if job.job_id == 0 else attacker
        if job.job_id == 1:
            outcomes.append(outcome)
        return judging.judge_test(problem, index, outcome), True

    # One run: the worker still holds the victim's test set when the attacker's program runs.
    jobs = [
        ProgramJob(0, "input()\nprint('ok')", None, victim.inputs, tests_key="victim"),
        ProgramJob(1, SCAN, None, attacker.inputs, tests_key="attacker"),
    ]
    runs = {run.job.job_id: run for run in pool.run(jobs, judge)}
    assert runs[0].verdicts[0].passed and runs[1].crashed is None
    seen = outcomes[0].stdout.decode()
    assert "fd " not in seen, seen  # no test set's descriptor reaches the program
    if level == "process" and os.geteuid() != 0:
        # Same uid, no capabilities on either side: only the kernel's ptrace policy decides.
        record(level, "NOT blocked" if victim_secret in seen else f"blocked by ptrace policy: {seen.strip()}")
        return
    assert victim_secret not in seen, "a program read another problem's test inputs"
    how = "fds closed; the worker's /proc fds need its capabilities" if level == "process" else "/proc not readable"
    record(level, f"blocked: {how}")
