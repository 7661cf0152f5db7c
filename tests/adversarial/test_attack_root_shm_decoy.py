"""A root-only System V shared-memory segment of the host (owner root, mode 0600, holding a
secret), created by the test as a decoy: the program looks it up by key and by id, reads it and
writes over it. A uid 0 without capabilities is still its owner, so only another IPC namespace
or another uid keeps it out."""

import ctypes
import errno
import secrets

import pytest

from conftest import stdin_problem

ATTACK = "root-only host SysV segment (read / overwrite)"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.shmat.restype = ctypes.c_void_p
IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0
SIZE = 4096

CODE = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
KEY, SHMID, SECRET = {key}, {shmid}, {secret!r}
out = []
for how, sid in (("key", libc.shmget(KEY, 0, 0)), ("id", SHMID)):
    if sid == -1:
        out.append(f"{{how}}:lookup-denied:{{ctypes.get_errno()}}")
        continue
    addr = libc.shmat(sid, None, 0)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        out.append(f"{{how}}:attach-denied:{{ctypes.get_errno()}}")
        continue
    if SECRET in ctypes.string_at(addr, 64):
        out.append(f"{{how}}:read")
    ctypes.memmove(addr, b"PWNED", 5)
    out.append(f"{{how}}:written")
print(" ".join(out))
"""


@pytest.fixture
def root_segment():
    key = 0x200000 + secrets.randbelow(1 << 29)
    secret = b"SHMSECRET-" + secrets.token_hex(8).encode()
    shmid = _libc.shmget(key, SIZE, IPC_CREAT | IPC_EXCL | 0o600)
    assert shmid != -1, ctypes.get_errno()
    addr = _libc.shmat(shmid, None, 0)
    ctypes.memmove(addr, secret, len(secret))
    try:
        yield key, shmid, secret, addr
    finally:
        _libc.shmdt(ctypes.c_void_p(addr))
        _libc.shmctl(shmid, IPC_RMID, None)


def test_root_only_segment_stays_unread_and_untouched(attack, level, record, root_segment):
    key, shmid, secret, addr = root_segment
    r = attack.run(level, CODE.format(key=key, shmid=shmid, secret=secret), stdin_problem(["1\n"], ["x\n"]))
    assert ctypes.string_at(addr, len(secret)) == secret, "the program wrote into the host's segment"
    assert "read" not in r.stdout and "written" not in r.stdout, r.stdout
    # e.g. "key:lookup-denied:2" -> "by key: ENOENT"
    how = [f"by {t.split(':')[0]}: {errno.errorcode[int(t.split(':')[2])]}" for t in r.stdout.split()]
    record(level, "blocked, segment unchanged (" + ", ".join(how) + ")")
