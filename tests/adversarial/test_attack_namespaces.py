"""Creating namespaces: a user namespace needs no privilege at all, and inside it the program is
root again (and may then make mount and other namespaces). unshare() with every CLONE_NEW* flag,
and a raw clone(CLONE_NEWUSER) (a filter must catch clone's flags, not only unshare)."""

import platform

from conftest import stdin_problem

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
    assert r.status == "passed", f"namespaces created: {r.stdout}"
    how = ("denied: no capabilities, seccomp denies unshare/setns/clone with CLONE_NEW*" if level == "process"
           else "denied: seccomp")
    record(level, how)
