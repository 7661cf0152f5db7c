"""Starting other programs: subprocess, os.system, posix_spawn."""

from conftest import stdin_problem

ATTACK = "subprocess spawn"

CODE = """
import os, subprocess
ran = []
try:
    ran.append(subprocess.run(["/bin/sh", "-c", "echo spawned"], capture_output=True, text=True).stdout.strip())
except OSError as e:
    ran.append(f"subprocess:{e.errno}")
try:
    ran.append(str(os.system("true")))
except OSError as e:
    ran.append(f"system:{e.errno}")
try:
    pid = os.posix_spawn("/bin/true", ["true"], {})
    os.waitpid(pid, 0)
    ran.append("posix_spawn")
except OSError as e:
    ran.append(f"posix_spawn:{e.errno}")
print(" ".join(ran))
"""


def test_spawning_programs(attack, level, record):
    r = attack.run(level, CODE, stdin_problem(["1\n"], ["spawned 0 posix_spawn\n"]))
    if level == "process":
        assert r.status == "passed", r.detail
        record(level, "NOT blocked: subprocess, os.system, posix_spawn all ran")
    else:
        assert r.status == "wrong_answer"
        assert "spawned" not in r.stdout and "posix_spawn " not in r.stdout + " ", r.stdout
        denied = r.stdout.count(":1")  # subprocess and posix_spawn report EPERM; os.system a failed shell
        record(level, f"blocked: subprocess, os.system, posix_spawn all fail ({denied} with EPERM)")
