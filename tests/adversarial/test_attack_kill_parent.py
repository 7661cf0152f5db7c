"""Killing the worker, and kill(-1) (every process the program may signal).

At `process` the program may kill its own worker: the worker is replaced, the program retried
once, then judged `sandbox_violation`. kill(-1) is only ever run at a level where a probe first
shows that signalling another process is denied: as root at `process` it would kill the machine.
"""

import os
import subprocess
import time

import pytest

from conftest import stdin_problem

ATTACK = "kill the worker"

PROBE = """
import os
try:
    os.kill(os.getppid(), 0)
    print("allowed")
except PermissionError:
    print("denied")
"""


def test_kill_parent(attack, level, record):
    code = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint(1)\n"
    r = attack.run(level, code, stdin_problem(["1\n"], ["1\n"]), extra_budget_s=10)
    if level == "process":
        assert r.status == "sandbox_violation" and r.worker_restarts >= 1
        record(level, "sandbox_violation (worker replaced, run goes on)")
    else:
        assert r.status == "runtime_error" and "PermissionError" in r.detail
        assert r.worker_restarts == 0
        record(level, "runtime_error: EPERM")


def _require_confined_signals(attack, level, record, name, danger, skip_reason):
    """Skip (and record why) where a signal to other processes would not be contained."""
    if level == "process":
        record(level, f"not run: {danger}", name)
        pytest.skip(skip_reason)
    probe = attack.run(level, PROBE, stdin_problem(["1\n"], ["denied\n"]))
    if probe.stdout.strip() != "denied":
        record(level, "not run: signals to other processes are allowed here", name)
        pytest.skip(f"signals are not confined at {level} here: {name} not run")


def test_kill_minus_one(attack, level, record):
    name = "kill(-1, SIGKILL)"
    _require_confined_signals(
        attack,
        level,
        record,
        name,
        "would kill every process of the user",
        "kill(-1) cannot be contained at the process level: not run",
    )
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        r = attack.run(
            level, "import os, signal\nos.kill(-1, signal.SIGKILL)\nprint(1)\n", stdin_problem(["1\n"], ["1\n"])
        )
        time.sleep(0.05)
        assert bystander.poll() is None, "kill(-1) reached a process outside the sandbox"
        os.kill(os.getpid(), 0)
    finally:
        bystander.kill()
        bystander.wait()
    assert r.status == "runtime_error" and r.worker_restarts == 0, r.detail
    record(level, "runtime_error: EPERM; bystander process alive", name)


def test_kill_the_dispatcher_process_group(attack, level, record):
    name = "killpg of the evaluator's process group"
    _require_confined_signals(
        attack,
        level,
        record,
        name,
        "would kill the evaluator",
        "killing the dispatcher's process group is not contained at the process level: not run",
    )
    code = f"import os, signal\nos.killpg({os.getpgid(0)}, signal.SIGKILL)\nprint(1)\n"
    r = attack.run(level, code, stdin_problem(["1\n"], ["1\n"]))
    assert r.status == "runtime_error", r.detail
    record(level, "runtime_error: EPERM", name)


def test_signal_handlers_do_not_matter(attack, level, record):
    # A program that makes itself hard to kill and sends itself signals is still timed out.
    code = (
        "import os, signal\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n    signal.signal(s, signal.SIG_IGN)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\nwhile True:\n    pass\n"
    )
    r = attack.run(level, code, stdin_problem(["1\n"], ["1\n"]))
    assert r.status == "timeout"
