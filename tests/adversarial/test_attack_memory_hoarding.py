"""Memory that RLIMIT_AS does not count: data written into memfds (never mapped), and files in
tmpfs folders (TMPDIR where it is RAM-backed, /dev/shm). The program keeps going far beyond its
memory limit; it must be stopped near the limit (the tests' memory cgroup kills it:
memory_limit), or be unable to hold that memory at all (memfd_create denied, /dev/shm not
writable, a size-capped tmpfs). Its files go with the test: the next program finds none.

Run with a 128 MB limit, so that "far beyond" stays cheap for a shared machine (1 GB at most).
Files are only ever written to the program's own TMPDIR and to /dev/shm under a name unique to
the test, which the test removes from the host if a broken sandbox left it there."""

import errno
import secrets
from pathlib import Path

from conftest import SLOW_TIMEOUT_S, stdin_problem
from tasks.execution import cgroups

LIMIT_MB = 128
GOAL_MB = 1024
# What a test may hold: its limit plus the cgroup's headroom (or plain RLIMIT_AS where no cgroup).
CEILING_MB = LIMIT_MB + cgroups.MEMORY_HEADROOM_MB

MEMFDS = f"""
import os
fds, held, stop = [], 0, "-"
try:
    while held < {GOAL_MB}:
        fd = os.memfd_create("hoard")
        for _ in range(2):
            os.write(fd, bytes(16 << 20))
        fds.append(fd)
        held += 32
except OSError as e:
    stop = str(e.errno)
print("held", held, "stopped", stop)
"""

TMPFS = """
import ctypes, os
class Statfs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 120)]
def ram_backed(path):
    st = Statfs()
    return ctypes.CDLL(None).statfs(path.encode(), ctypes.byref(st)) == 0 and st.f_type == 0x01021994
places = [d for d in (os.environ["TMPDIR"], "/dev/shm") if ram_backed(d) and os.access(d, os.W_OK)]
held, n, stops = 0, 0, []
for d in places:
    while held < {goal}:
        try:
            with open(os.path.join(d, f"{token}-{{n}}"), "wb") as fh:
                for _ in range(2):
                    fh.write(bytes(16 << 20))
        except OSError as e:
            stops.append(f"{{d}}:{{e.errno}}")
            break
        held += 32
        n += 1
print("places", ",".join(places) or "-", "held", held, "stopped", ",".join(stops) or "-")
"""

LEFTOVERS = """
import os
left = []
for d in (os.environ["TMPDIR"], "/dev/shm"):
    try:
        left += [f for f in os.listdir(d) if f.startswith({token!r})]
    except OSError:
        pass
print("left", ",".join(left) or "-")
"""


def _held_mb(stdout: str) -> int:
    words = stdout.split()
    return int(words[words.index("held") + 1]) if "held" in words else 0


def _run(attack, level, code, **kw):
    return attack.run(
        level, code, stdin_problem(["1\n"], ["x\n"]), timeout_s=SLOW_TIMEOUT_S, memory_limit_mb=LIMIT_MB, **kw
    )


def test_memfd_hoarding(attack, level, record):
    r = _run(attack, level, MEMFDS)
    held = _held_mb(r.stdout)
    assert r.status == "memory_limit" or held <= CEILING_MB, (r.status, r.stdout)
    if r.status == "memory_limit":
        record(level, f"memory_limit: the tests' memory cgroup killed it ({CEILING_MB} MB cap)", "memfd hoarding")
    else:
        stop = r.stdout.split()[-1]
        how = f"memfd_create {errno.errorcode[int(stop)]}" if stop != "-" else "held within the limit"
        record(level, f"blocked: held {held} MB ({how})", "memfd hoarding")


def test_tmpfs_hoarding(attack, level, record):
    token = "tacohoard" + secrets.token_hex(6)
    try:
        r = _run(attack, level, TMPFS.format(goal=GOAL_MB, token=token))
        left = _run(attack, level, LEFTOVERS.format(token=token))
    finally:
        on_host = [p for p in Path("/dev/shm").glob(token + "*")]
        for p in on_host:
            p.unlink()
    held = _held_mb(r.stdout)
    assert not on_host, f"{len(on_host)} files left in the host's /dev/shm"
    assert left.stdout.split()[1] == "-", left.stdout
    assert r.status == "memory_limit" or held <= CEILING_MB, (r.status, r.stdout)
    if r.status == "memory_limit":
        cell = f"memory_limit: the tests' memory cgroup killed it ({CEILING_MB} MB cap)"
    else:
        places, stops = r.stdout.split()[1], r.stdout.split()[-1]
        # "/dev/shm:28" -> "/dev/shm ENOSPC"
        stops = ", ".join(
            f"{s.rsplit(':', 1)[0]} {errno.errorcode[int(s.rsplit(':', 1)[1])]}" for s in stops.split(",") if s != "-"
        )
        cell = f"held {held} MB (stopped: {stops or 'never'})" if places != "-" else "no RAM-backed folder writable"
    record(level, cell + "; no file outlives the test", "tmpfs hoarding (TMPDIR, /dev/shm)")
