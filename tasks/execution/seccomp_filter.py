"""The seccomp filter of a test child, compiled once per worker with libseccomp (PyPI `pyseccomp`).

Compiling a filter costs about a millisecond, loading a ready BPF program a few microseconds. So
the worker compiles the filter once, exports its BPF, and each test child only patches its own pid
into the program (the signal rules compare against it) and loads it with one prctl.

Denied with EPERM (the program sees a PermissionError it may catch; nothing it can retry works):
new processes (fork, vfork, clone without CLONE_THREAD; clone3 answers ENOSYS so libc falls back
to clone, whose flags a filter can read) and exec; sockets and io_uring (which could open sockets
and files behind the filter's back); signals to any process but itself; ptrace and the other ways
into another process's memory; mount, namespaces, chroot; kernel modules, reboot, clocks, swap,
keyrings, bpf, perf, device nodes and open-by-handle; System V and POSIX message-queue IPC (objects
that would outlive the test, or reach another user's) and memfds (memory RLIMIT_AS does not
count). Syscalls of another ABI (i386 `int 0x80`, x32) kill the process, as libseccomp does by
default.

The `process` level loads a much smaller filter (`NAMESPACES`), once, into the worker (test
children inherit it): it only denies new namespaces (unshare, setns, clone with a CLONE_NEW*
flag). Without it a program without capabilities could still create a user namespace, become
root in it and mount or unshare anything there. unshare(CLONE_NEWIPC) alone stays allowed: each
test child needs it before it drops its capabilities, and without them it fails anyway.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from typing import Any

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
CLONE_THREAD = 0x00010000
CLONE_NEWIPC = 0x08000000
# Stands for the child's pid in the compiled program until the child patches it in.
PID_PLACEHOLDER = 0x7ACE5EED

DENIED = (
    # other processes
    "fork",
    "vfork",
    "execve",
    "execveat",
    # network and io_uring
    "socket",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    # signals that cannot be restricted to the caller by pid
    "tkill",
    "pidfd_send_signal",
    "pidfd_getfd",
    # other processes' memory and state
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "process_madvise",
    "process_mrelease",
    # file systems and namespaces
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mknod",
    "mknodat",
    "open_by_handle_at",
    "name_to_handle_at",
    # the machine
    "reboot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "swapoff",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "acct",
    "iopl",
    "ioperm",
    "syslog",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "fanotify_init",
    # IPC objects outlive their creator; memfds hold memory no rlimit counts
    "shmget",
    "shmat",
    "shmctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "ipc",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    "memfd_create",
    "memfd_secret",
)
# Allowed only when the first argument (pid or thread-group id) is the caller's own pid.
OWN_PID_ONLY = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
FULL = "full"
NAMESPACES = "namespaces"
# CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
CLONE_NEW_FLAGS = (0x80, 0x00020000, 0x02000000, 0x04000000, CLONE_NEWIPC, 0x10000000, 0x20000000, 0x40000000)

_libc = ctypes.CDLL(None, use_errno=True)


class SeccompUnavailable(Exception):
    pass


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _build(seccomp: Any, kind: str) -> Any:
    eperm = seccomp.ERRNO(errno.EPERM)
    f = seccomp.SyscallFilter(seccomp.ALLOW)
    # clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone.
    rules: list[tuple[int, str, tuple[Any, ...]]] = [(seccomp.ERRNO(errno.ENOSYS), "clone3", ())]
    if kind == NAMESPACES:
        rules += [(eperm, "unshare", (seccomp.Arg(0, seccomp.NE, CLONE_NEWIPC),)), (eperm, "setns", ())]
        rules += [(eperm, "clone", (seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag),)) for flag in CLONE_NEW_FLAGS]
    else:
        rules += [(eperm, name, ()) for name in DENIED]
        rules.append((eperm, "clone", (seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0),)))
        rules += [(eperm, name, (seccomp.Arg(0, seccomp.NE, PID_PLACEHOLDER),)) for name in OWN_PID_ONLY]
    for action, name, args in rules:
        try:
            f.add_rule(action, name, *args)
        except (OSError, ValueError, RuntimeError):
            pass  # a syscall this architecture does not have (fork on arm64, iopl…)
    return f


class CompiledFilter:
    """The exported BPF program and where the pid placeholder sits in it (`FULL` only)."""

    def __init__(self, kind: str = FULL) -> None:
        try:
            import pyseccomp as seccomp
        except (ImportError, OSError) as exc:  # OSError: libseccomp.so missing
            raise SeccompUnavailable(f"pyseccomp / libseccomp not importable: {exc}") from exc
        fd = os.memfd_create("seccomp-bpf")
        try:
            holder = type("_Fd", (), {"fileno": lambda self: fd})()
            _build(seccomp, kind).export_bpf(holder)
            program = os.pread(fd, 1 << 20, 0)
        except (OSError, RuntimeError) as exc:
            raise SeccompUnavailable(f"cannot compile the seccomp filter: {exc}") from exc
        finally:
            os.close(fd)
        if not program or len(program) % 8:
            raise SeccompUnavailable("libseccomp exported an empty or malformed BPF program")
        # struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}: patch `k` of every instruction using it.
        self.offsets = [
            i + 4 for i in range(0, len(program), 8) if struct.unpack_from("=I", program, i + 4)[0] == PID_PLACEHOLDER
        ]
        if kind == FULL and not self.offsets:
            raise SeccompUnavailable("the pid placeholder is missing from the exported BPF program")
        self.instructions = len(program) // 8
        self._buffer = ctypes.create_string_buffer(program, len(program))
        self._prog = _SockFprog(self.instructions, ctypes.addressof(self._buffer))

    def load(self, pid: int) -> None:
        """Install the filter on this process (single-threaded; after PR_SET_NO_NEW_PRIVS unless
        it has CAP_SYS_ADMIN): `FULL` in the test child, `NAMESPACES` in the worker."""
        for off in self.offsets:
            struct.pack_into("=I", self._buffer, off, pid)
        if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(self._prog), 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"loading the seccomp filter: {os.strerror(err)}")


def set_no_new_privs() -> None:
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"PR_SET_NO_NEW_PRIVS: {os.strerror(err)}")
