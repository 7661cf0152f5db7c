"""The dispatcher's bookkeeping: which job a free worker takes next, and the test sets it shares.

Jobs come as a stream and are kept only a little ahead (`JobQueue`), grouped by test set; a free
worker takes the next job of the problem it ran last, else of a problem no other worker is on,
else the oldest: programs of one problem stay on one worker (its test set crosses once), and no
worker ever waits while a job is pending. Test sets (`TestStore`) are built when a worker first
needs one and kept for the few problems in flight.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from tasks.execution import testdata
from tasks.execution.worker import ProgramJob


@dataclass
class TransferStats:
    """What the dispatcher sent to its workers (read by tests and benchmarks)."""

    messages: int = 0
    message_bytes: int = 0  # pickled bytes of every message written to a worker's socket
    test_sets_shared: int = 0  # test-set descriptors passed to a worker
    test_bytes_shared: int = 0  # their sizes: test data a worker could read
    test_sets_built: int = 0
    test_bytes_built: int = 0
    test_bytes_held_peak: int = 0  # most test-set bytes the dispatcher held at once


class TestKeys:
    """The key of a job's test set: the caller's `tests_key`, else a hash of the inputs, computed
    once per inputs list (remembered by identity for the last few lists)."""

    def __init__(self, remembered: int):
        self._remembered = remembered
        self._by_id: OrderedDict[int, tuple[Any, str]] = OrderedDict()

    def __call__(self, job: ProgramJob) -> str:
        if job.tests_key is not None:
            return f"{int(job.fn_name is not None)}:{job.tests_key}"
        found = self._by_id.get(id(job.inputs))
        if found is not None and found[0] is job.inputs:
            return f"{int(job.fn_name is not None)}:{found[1]}"
        digest = hashlib.sha256(pickle.dumps(job.inputs, protocol=pickle.HIGHEST_PROTOCOL)).hexdigest()
        self._by_id[id(job.inputs)] = (job.inputs, digest)  # holding the list keeps its id unique
        while len(self._by_id) > self._remembered:
            self._by_id.popitem(last=False)
        return f"{int(job.fn_name is not None)}:{digest}"


class JobQueue:
    """Pending jobs, pulled from the stream only as far as needed to offer `spread` problems
    (and never more than `max_ahead` jobs)."""

    def __init__(self, jobs: Iterable[ProgramJob], key_of: Callable[[ProgramJob], str], spread: int, max_ahead: int):
        self._stream: Iterator[ProgramJob] = iter(jobs)
        self._key_of = key_of
        self._spread = max(1, spread)
        self._max_ahead = max(1, max_ahead)
        self._groups: OrderedDict[str, deque[ProgramJob]] = OrderedDict()
        self._size = 0
        self._drained = False

    def _fill(self) -> None:
        while not self._drained and len(self._groups) <= self._spread and self._size < self._max_ahead:
            job = next(self._stream, None)
            if job is None:
                self._drained = True
                return
            self._groups.setdefault(self._key_of(job), deque()).append(job)
            self._size += 1

    def take(self, prefer: str | None, claimed: set[str]) -> tuple[ProgramJob, str] | None:
        """The next job for a worker that last ran `prefer`, while others are on `claimed`."""
        self._fill()
        if not self._groups:
            return None
        if prefer in self._groups:
            key = prefer
        else:
            key = next((k for k in self._groups if k not in claimed), next(iter(self._groups)))
        group = self._groups[key]
        job = group.popleft()
        if not group:
            del self._groups[key]
        self._size -= 1
        return job, key

    @property
    def empty(self) -> bool:
        self._fill()
        return not self._groups


class TestStore:
    """The dispatcher's test sets by key: built on first need, at most `capacity` kept beyond the
    ones running jobs use (least recently used closed first), and who holds which."""

    def __init__(self, capacity: int, stats: TransferStats):
        self._capacity = max(1, capacity)
        self._stats = stats
        self._sets: OrderedDict[str, tuple[int, int]] = OrderedDict()  # key → (fd, size)
        self.holders: dict[str, set[int]] = {}  # key → indexes of the slots whose worker has it
        self._held_bytes = 0

    def get(self, key: str, inputs: list[Any], call_based: bool) -> tuple[int, int]:
        found = self._sets.get(key)
        if found is None:
            found = testdata.write_test_set(inputs, call_based)
            self._sets[key] = found
            self._held_bytes += found[1]
            self._stats.test_sets_built += 1
            self._stats.test_bytes_built += found[1]
            self._stats.test_bytes_held_peak = max(self._stats.test_bytes_held_peak, self._held_bytes)
        self._sets.move_to_end(key)
        return found

    def shared(self, key: str, slot: int, size: int) -> None:
        self.holders.setdefault(key, set()).add(slot)
        self._stats.test_sets_shared += 1
        self._stats.test_bytes_shared += size

    def forget_slot(self, slot: int) -> None:
        """A replaced worker holds nothing any more."""
        for slots in self.holders.values():
            slots.discard(slot)

    def evict(self, in_use: set[str], keep: int | None = None) -> list[tuple[str, set[int]]]:
        """Close sets beyond `keep` (default: the capacity) that no running job uses; return
        (key, slots holding it) for each, so their workers can be told to let go too."""
        keep = self._capacity if keep is None else keep
        gone = []
        for key in [k for k in self._sets if k not in in_use]:
            if len(self._sets) <= keep:
                break
            fd, size = self._sets.pop(key)
            os.close(fd)
            self._held_bytes -= size
            gone.append((key, self.holders.pop(key, set())))
        return gone

    def close(self) -> None:
        for fd, _ in self._sets.values():
            os.close(fd)
        self._sets.clear()
        self.holders.clear()
        self._held_bytes = 0
