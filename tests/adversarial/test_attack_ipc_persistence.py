"""IPC objects that outlive the program: System V shared memory, message queue and semaphore set,
a POSIX shared-memory file in /dev/shm and a POSIX message queue, all with names unique to the
test. A second program on the same pool then looks for them, and the host is searched too.

Whatever the host still holds afterwards (on a broken sandbox) is removed by the test itself."""

import ctypes
import errno
import os
import secrets
from pathlib import Path

from conftest import stdin_problem

ATTACK = "System V / POSIX IPC objects outliving the test"

_libc = ctypes.CDLL(None, use_errno=True)
_librt = ctypes.CDLL("librt.so.1", use_errno=True)
IPC_RMID = 0


def _names():
    token = "tacoipc" + secrets.token_hex(6)
    return 0x100000 + secrets.randbelow(1 << 29), token


_PRELUDE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
librt = ctypes.CDLL("librt.so.1", use_errno=True)
KEY, NAME = {key}, {name!r}
"""

CREATE = (
    _PRELUDE
    + """
made, denied = [], []
def check(what, ret):
    (denied.append(f"{{what}}:{{ctypes.get_errno()}}") if ret == -1 else made.append(what))
check("shm", libc.shmget(KEY, 1 << 20, 0o1000 | 0o600))
check("msg", libc.msgget(KEY + 1, 0o1000 | 0o600))
check("sem", libc.semget(KEY + 2, 1, 0o1000 | 0o600))
try:
    fd = os.open("/dev/shm/" + NAME, os.O_CREAT | os.O_RDWR, 0o600)
    os.write(fd, b"x" * 4096)
    made.append("posix-shm")
except OSError as e:
    denied.append(f"posix-shm:{{e.errno}}")
check("mq", librt.mq_open(("/" + NAME).encode(), os.O_CREAT | os.O_RDWR, 0o600, None))
print("made", ",".join(made) or "-", "denied", ",".join(denied) or "-")
"""
)

LOOK = (
    _PRELUDE
    + """
found = [what for what, ret in (("shm", libc.shmget(KEY, 0, 0)), ("msg", libc.msgget(KEY + 1, 0)),
                                ("sem", libc.semget(KEY + 2, 0, 0)),
                                ("mq", librt.mq_open(("/" + NAME).encode(), os.O_RDONLY)))
         if ret != -1]
if os.path.exists("/dev/shm/" + NAME):
    found.append("posix-shm")
print("found", ",".join(found) or "-")
"""
)


def _on_host_and_removed(key, name):
    """What the host's own IPC namespace and /dev/shm still hold; removed on the way."""
    left = []
    for kind, offset, remove in (("shm", 0, _libc.shmctl), ("msg", 1, _libc.msgctl), ("sem", 2, _libc.semctl)):
        for line in Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[0]) == key + offset:
                left.append(kind)
                remove(int(fields[1]), *((0,) if kind == "sem" else ()), IPC_RMID, None)
    if os.path.exists("/dev/shm/" + name):
        left.append("posix-shm")
        os.unlink("/dev/shm/" + name)
    if _librt.mq_unlink(("/" + name).encode()) == 0:
        left.append("mq")
    elif ctypes.get_errno() != errno.ENOENT:
        raise OSError(ctypes.get_errno(), "mq_unlink")
    return left


def test_ipc_objects_do_not_outlive_the_test(attack, level, record):
    key, name = _names()
    try:
        r = attack.run(level, CREATE.format(key=key, name=name), stdin_problem(["1\n"], ["x\n"]))
        probe = attack.run(level, LOOK.format(key=key, name=name), stdin_problem(["1\n"], ["found -\n"]))
    finally:
        on_host = _on_host_and_removed(key, name)
    made, denied = r.stdout.split()[1], r.stdout.split()[3]
    assert not on_host, f"left in the host's IPC namespace or /dev/shm: {on_host}"
    assert probe.status == "passed", f"the next program on the same worker found {probe.stdout.strip()}"
    if level == "process":
        record(level, f"created ({made}); none outlive the test: IPC namespace per test, private /dev/shm")
    else:
        assert made == "-", r.stdout  # the filter denies them outright
        # "shm:1,posix-shm:30" -> "shm EPERM, posix-shm EROFS"
        record(
            level,
            "denied: "
            + ", ".join(f"{d.split(':')[0]} {errno.errorcode[int(d.split(':')[1])]}" for d in denied.split(",")),
        )
