"""Landlock (Linux ≥ 5.13): an unprivileged, per-process filesystem allow-list.

The worker builds one ruleset (read-only: the interpreter, its libraries and the system's; read and
write: the worker's scratch folder) and keeps its fd; each test child applies it with a single
`landlock_restrict_self` call. From then on the child, root or not, can open nothing else: not
the dataset, not the run folder, not /proc (so no peeking at other processes' memory or
environment). With ABI ≥ 4 TCP bind/connect are denied too; with ABI ≥ 6 the child can signal
only processes of its own domain (itself and its threads) and cannot reach abstract unix sockets.
Files opened before the restriction (the memfd stdio) keep working.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
from typing import Iterable

_SYS_CREATE_RULESET = 444  # the same number on every architecture (new syscall table)
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # the only rights a file rule may hold
_READ = EXECUTE | READ_FILE | READ_DIR
_MIN_FD = 10

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class LandlockError(OSError):
    pass


def abi_version() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is missing or disabled."""
    version = _libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(0, int(version))


def _handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


class Ruleset:
    """An open ruleset fd, ready to be applied (in a forked child) with `restrict_self`."""

    def __init__(self, read_only: Iterable[str], read_write: Iterable[str], device_files: Iterable[str] = ()):
        self.abi = abi_version()
        if self.abi < 1:
            raise LandlockError(0, "Landlock is not available in this kernel")
        handled = _handled_fs(self.abi)
        attr = _RulesetAttr(handled_access_fs=handled)
        size = 8
        if self.abi >= 4:
            attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
            size = 16
        if self.abi >= 6:
            attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
            size = 24
        fd = _libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
        if fd < 0:
            err = ctypes.get_errno()
            raise LandlockError(err, f"landlock_create_ruleset: {os.strerror(err)}")
        # Above the test child's stdio and result fds (0-3), which are dup2'd over low numbers.
        self.fd = fcntl.fcntl(int(fd), fcntl.F_DUPFD_CLOEXEC, _MIN_FD)
        os.close(int(fd))
        self.rules: list[tuple[str, str]] = []
        try:
            for path in read_only:
                self._add(path, _READ & handled)
            # Everything under the scratch folder except device nodes.
            for path in read_write:
                self._add(path, handled & ~(MAKE_CHAR | MAKE_BLOCK))
            for path in device_files:
                self._add(path, (READ_FILE | WRITE_FILE) & handled)
        except BaseException:
            self.close()
            raise

    def _add(self, path: str, rights: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return  # a path that does not exist needs no rule
        try:
            if not os.path.isdir(path):
                rights &= _FILE_RIGHTS
            attr = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
            if _libc.syscall(_SYS_ADD_RULE, self.fd, _RULE_PATH_BENEATH, ctypes.byref(attr), ctypes.c_uint32(0)) < 0:
                err = ctypes.get_errno()
                raise LandlockError(err, f"landlock_add_rule({path}): {os.strerror(err)}")
            self.rules.append((path, "rw" if rights & WRITE_FILE else "ro"))
        finally:
            os.close(fd)

    def restrict_self(self) -> None:
        """In the test child, after PR_SET_NO_NEW_PRIVS."""
        if _libc.syscall(_SYS_RESTRICT_SELF, self.fd, ctypes.c_uint32(0)) < 0:
            err = ctypes.get_errno()
            raise LandlockError(err, f"landlock_restrict_self: {os.strerror(err)}")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
