"""The "reliability guard" of other harnesses sets `os.unlink = None` and the like; `posix.*`,
`importlib.reload(os)` or `ctypes` bypass it. taco-eval guards nothing in Python: the checks
are in the kernel, so every way of making the same system call meets the same wall."""

from conftest import stdin_problem

ATTACK = "posix.* / ctypes bypasses"


def _code(decoys):
    return f"""
import os, posix, ctypes, importlib
os.unlink = os.remove = os.system = os.kill = os.fork = None  # the peers' guard
os = importlib.reload(os)
done = []
try:
    posix.unlink({str(decoys.evaluator)!r}); done.append("posix.unlink")
except OSError:
    pass
libc = ctypes.CDLL(None, use_errno=True)
if libc.unlink({str(decoys.results).encode()!r}) == 0:
    done.append("libc.unlink")
if posix.system("true") == 0:
    done.append("posix.system")
try:
    fd = posix.open({str(decoys.secret_file)!r}, posix.O_RDONLY); done.append("posix.open")
except OSError:
    pass
if libc.fork() >= 0:
    done.append("libc.fork")
    if posix.getpid() != posix.getpgid(0):  # the forked copy
        posix._exit(0)
print(" ".join(done) or "none")
"""


def test_posix_and_ctypes_bypasses(attack, level, record, decoys):
    r = attack.run(level, _code(decoys), stdin_problem(["1\n"], ["none\n"]), decoys_may_change=level == "process")
    if level == "process":
        record(level, "NOT blocked: " + r.stdout.strip())
    else:
        assert r.status == "passed" and r.decoys_intact, (r.stdout, r.decoys_changed)
        record(level, "blocked")
