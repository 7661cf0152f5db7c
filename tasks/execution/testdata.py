"""A problem's test inputs as one sealed memfd that workers read a test at a time.

The dispatcher writes a problem's inputs once into a memfd (`write_test_set`), seals it (no one,
itself included, can change it afterwards) and passes the descriptor to a worker over the worker's
socket the first time that worker runs a program of the problem that compiles. The worker keeps
a few such descriptors (`TestSetCache`), reads the header once and each input only when a test
needs it: a stdin input goes from the memfd into the test's stdin memfd inside the kernel, without
ever being a Python object in the worker, so the worker stays small and its forks stay cheap.

Expected outputs are never written here. The descriptors are closed in every test child before
the program starts (the runner closes every fd it does not need), like the worker's socket.

Layout: magic, mode byte, test count, then count + 1 offsets (u64, from the start of the data),
then the inputs back to back: a stdin input as its UTF-8 bytes (surrogates escaped, as stdin was
always written), a call-based input as the pickle of its argument list.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

_MAGIC = b"TACOTS1\0"
_HEAD = struct.Struct("<8sBI")  # magic, call-based (0/1), test count
_OFFSET = struct.Struct("<Q")
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
_WRITE_CHUNK = 1 << 20


class TestDataError(Exception):
    pass


def encode_input(test_input: Any, call_based: bool) -> bytes:
    """One test's input as stored: what the worker used to write to stdin, or the argument list."""
    if call_based:
        return pickle.dumps(test_input, protocol=pickle.HIGHEST_PROTOCOL)
    if test_input is None:
        return b""
    if not isinstance(test_input, str):
        raise TypeError(f"a stdin test input must be text, not {type(test_input).__name__}")
    return test_input.encode("utf-8", "surrogateescape")


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:_WRITE_CHUNK]) :]


def write_test_set(inputs: Sequence[Any], call_based: bool) -> tuple[int, int]:
    """A sealed memfd holding `inputs`: (fd, size in bytes). The caller closes the fd. Inputs are
    encoded and written one at a time (the offsets go in last): never a second copy of them all."""
    fd = os.memfd_create("taco-eval-tests", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.lseek(fd, _HEAD.size + _OFFSET.size * (len(inputs) + 1), os.SEEK_SET)
        offsets = [0]
        for test_input in inputs:
            data = encode_input(test_input, call_based)
            _write_all(fd, data)
            offsets.append(offsets[-1] + len(data))
        head = _HEAD.pack(_MAGIC, int(call_based), len(inputs)) + b"".join(_OFFSET.pack(o) for o in offsets)
        os.pwrite(fd, head, 0)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
        return fd, os.fstat(fd).st_size
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class StoredInput:
    """A stdin input inside a test set: copied into the test's stdin by `copy_to`."""

    fd: int
    offset: int
    length: int

    def copy_to(self, target: int) -> None:
        """Make the file `target` hold exactly this input, read position at its start. Its pages
        are overwritten in place, not freed and faulted in again (~4x faster for big inputs)."""
        os.lseek(target, 0, os.SEEK_SET)
        done = 0
        while done < self.length:
            sent = os.sendfile(target, self.fd, self.offset + done, self.length - done)
            if sent <= 0:
                raise TestDataError("the test set ended before the input did")
            done += sent
        os.ftruncate(target, self.length)
        os.lseek(target, 0, os.SEEK_SET)


class TestSet:
    """The reading side of a test set, in the worker (owns the fd)."""

    def __init__(self, fd: int):
        self.fd = fd
        head = os.pread(fd, _HEAD.size, 0)
        if len(head) != _HEAD.size:
            raise TestDataError("not a test set (too short)")
        magic, call_based, count = _HEAD.unpack(head)
        if magic != _MAGIC:
            raise TestDataError("not a test set (bad magic)")
        self.call_based = bool(call_based)
        self.count = count
        raw = os.pread(fd, _OFFSET.size * (count + 1), _HEAD.size)
        if len(raw) != _OFFSET.size * (count + 1):
            raise TestDataError("test set truncated")
        self._offsets = [o for (o,) in _OFFSET.iter_unpack(raw)]
        self._data_at = _HEAD.size + len(raw)

    def input(self, index: int) -> Any:
        """Test `index`'s input: a `StoredInput` (stdin) or the argument list (call-based)."""
        start, end = self._offsets[index], self._offsets[index + 1]
        if not self.call_based:
            return StoredInput(self.fd, self._data_at + start, end - start)
        return pickle.loads(os.pread(self.fd, end - start, self._data_at + start))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class TestSetCache:
    """The worker's few test sets, by key, least recently used dropped first."""

    def __init__(self, capacity: int):
        self.capacity = max(1, capacity)
        self._sets: OrderedDict[str, TestSet] = OrderedDict()

    def get(self, key: str) -> TestSet | None:
        found = self._sets.get(key)
        if found is not None:
            self._sets.move_to_end(key)
        return found

    def put(self, key: str, fd: int) -> TestSet:
        try:
            test_set = TestSet(fd)
        except BaseException:
            os.close(fd)
            raise
        self.release(key)
        self._sets[key] = test_set
        while len(self._sets) > self.capacity:
            _, oldest = self._sets.popitem(last=False)
            oldest.close()
        return test_set

    def release(self, key: str) -> None:
        found = self._sets.pop(key, None)
        if found is not None:
            found.close()

    def keys(self) -> list[str]:
        return list(self._sets)

    def close(self) -> None:
        for test_set in self._sets.values():
            test_set.close()
        self._sets.clear()
