"""Creating namespaces: a user namespace needs no privilege at all, and inside it the program is
root again (and may then make mount and other namespaces). unshare() with every CLONE_NEW* flag,
and a raw clone(CLONE_NEWUSER) (a filter must catch clone's flags, not only unshare)."""

import platform

from conftest import stdin_problem
from tasks.execution import sandbox

ATTACK = "user / mount / other namespaces (unshare, clone)"

SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(platform.machine(), -1)

CODE = f"""
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
FLAGS = [("mount", 0x00020000), ("net", 0x40000000), ("ipc", 0x08000000), ("uts", 0x04000000),
         ("pid", 0x20000000), ("cgroup", 0x02000000), ("user+mount", 0x10020000), ("user", 0x10000000)]
made = []
for name, flag in FLAGS:
    if libc.unshare(flag) == 0:
        made.append(name)
if {SYS_CLONE} > 0:
    pid = libc.syscall({SYS_CLONE}, 0x10000000 | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
        made.append("clone(user)")
print("made", ",".join(made) or "-")
"""


def test_namespaces_cannot_be_created(attack, level, record):
    r = attack.run(level, CODE, stdin_problem(["1\n"], ["made -\n"]))
    if not sandbox.describe(level)["namespaces_denied"]:  # `process` without libseccomp: documented gap
        record(level, f"NOT blocked: {r.stdout.split()[1]} (no libseccomp for the namespace filter)")
        return
    assert r.status == "passed", f"namespaces created: {r.stdout}"
    record(
        level,
        "denied: seccomp filter on the worker, no capabilities" if level == "process" else "denied: seccomp filter",
    )
