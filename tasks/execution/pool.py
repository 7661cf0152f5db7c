"""A spawn-context pool of execution workers that survives anything a program does to them.

`multiprocess.Pool` hangs forever when a worker dies mid-task (and a program can kill its
worker); this dispatcher watches every worker's sentinel, replaces dead or stuck workers, and
retries the program they were running a bounded number of times.

Jobs are streamed (`dispatch.JobQueue`: a little look-ahead, programs of a problem kept on one
worker) and carry no test data: a worker that needs a problem's tests gets its sealed test set
once (`dispatch.TestStore`, `testdata`). Every message to a worker goes through `_send`, which
counts what crosses (`transfer`).
"""

from __future__ import annotations

import os
import pickle
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import multiprocess

from tasks import defaults, statuses
from tasks.execution import cgroups, sandbox, scratch
from tasks.execution import worker as w
from tasks.execution.dispatch import JobQueue, TestKeys, TestStore, TransferStats
from tasks.execution.limits import Limits
from tasks.execution.runner import TestOutcome
from tasks.execution.worker import ProgramJob, RunRequest, WorkerSettings

# judge(job, test_index, outcome) -> (opaque per-test verdict, keep running this program?)
JudgeFn = Callable[[ProgramJob, int, TestOutcome], tuple[Any, bool]]


class WorkerStartError(RuntimeError):
    pass


@dataclass
class ProgramRun:
    """Everything the pool learned about one program."""

    job: ProgramJob
    compile_error: str | None = None
    verdicts: list[Any] = field(default_factory=list)  # what `judge` returned, in test order
    crashed: str | None = None  # the program kept killing or hanging its worker
    elapsed_ms: float = 0.0


@dataclass
class _Slot:
    index: int
    process: Any = None
    conn: Any = None
    job: ProgramJob | None = None
    run: ProgramRun | None = None
    tests_key: str | None = None  # the test set of the job it runs, or last ran
    asked_tests: bool = False  # the worker asked for the current job's test set
    owes_done: bool = False  # a job finished here before the worker's DONE for it came
    started: float = 0.0
    deadline: float = 0.0
    ready: bool = False
    eof: bool = False
    stopped: bool = False  # STOP sent for the current job
    scratch: str | None = None  # the worker's temp folder: removed here if the worker is killed


def _release(process: Any) -> None:
    try:
        process.close()
    except (ValueError, OSError):
        pass


def _remove_scratch(slot: _Slot) -> None:
    if slot.scratch is not None:
        scratch.remove_tree(slot.scratch)
        slot.scratch = None


def _valid_outcome(outcome: Any) -> bool:
    return (
        type(outcome) is TestOutcome
        and (outcome.status is None or outcome.status in statuses.ALL)
        and type(outcome.stdout) is bytes
        and (outcome.returned is None or type(outcome.returned) is str)
        and type(outcome.stderr_tail) is str
        and type(outcome.elapsed_ms) is float
        and (outcome.exit_code is None or type(outcome.exit_code) is int)
    )


def _valid_message(msg: Any, job: ProgramJob | None) -> bool:
    """Whether `msg` is one the worker protocol allows, for the job the slot is running."""
    if type(msg) is not tuple or not msg:
        return False
    kind = msg[0]
    if kind == w.MSG_READY:
        return len(msg) == 4 and type(msg[1]) is int and type(msg[2]) is str and type(msg[3]) is int
    if job is None or len(msg) < 2 or type(msg[1]) is not int or msg[1] != job.job_id:
        return kind in (w.MSG_TEST, w.MSG_COMPILE_ERROR, w.MSG_DONE)  # late news of a finished job
    if kind == w.MSG_TEST:
        return len(msg) == 4 and type(msg[2]) is int and 0 <= msg[2] < len(job.inputs) and _valid_outcome(msg[3])
    if kind == w.MSG_COMPILE_ERROR:
        return len(msg) == 3 and type(msg[2]) is str
    if kind == w.MSG_NEED_TESTS:
        return len(msg) == 2
    return kind == w.MSG_DONE and len(msg) == 3 and type(msg[2]) is int


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class ExecutionPool:
    def __init__(self, workers: int | None = None, limits: Limits | None = None, isolation: str = "process"):
        self.size = workers or default_workers()
        self.limits = limits or Limits()
        if isolation not in sandbox.LEVELS:
            raise ValueError(f"unknown isolation level '{isolation}' (resolve 'auto' with sandbox.resolve first)")
        self.isolation = isolation
        self._ctx = multiprocess.get_context("spawn")
        self._slots = [_Slot(i) for i in range(self.size)]
        self.worker_restarts = 0
        self._failed_starts = 0
        # Cgroups per slot where they are writable: caps on processes and memory that bind root,
        # and a way to kill whatever a test or a dead worker's programs left behind.
        self.cgroups: list[cgroups.WorkerCgroup | None] = [None] * self.size
        self._library_paths = sandbox.python_paths() if isolation == sandbox.BWRAP else []
        self.transfer = TransferStats()
        self.peak_worker_rss_kb = 0  # the largest any worker has been (its VmHWM)
        self._tests = TestStore(max(defaults.DISPATCHER_TEST_SETS, self.size + 1), self.transfer)
        self._keys = TestKeys(defaults.DISPATCHER_TEST_SETS)
        # Every worker's socket and sentinel, in one poll set kept across calls (building a
        # selector per wait costs more than the rest of the dispatcher's work for a program).
        self._poller = select.poll()
        self._watched: dict[int, tuple[_Slot, bool]] = {}  # fd → (slot, whether it is the socket)

    @property
    def pids_limited(self) -> bool:
        """Whether every worker's processes are capped by a pids cgroup."""
        return all(cg is not None for cg in self.cgroups)

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> "ExecutionPool":
        for slot in self._slots:
            self._spawn(slot)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for slot in self._slots:
            if slot.conn is not None:
                self._send(slot, None)  # exit
        for slot in self._slots:
            if slot.process is not None:
                self._unwatch(slot)
                slot.process.join(timeout=2)
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join()
                _release(slot.process)
                slot.conn.close()
                slot.process = slot.conn = None
                _remove_scratch(slot)
        for i, cg in enumerate(self.cgroups):
            if cg is not None:
                cg.remove()
                self.cgroups[i] = None
        self._tests.close()

    def _cgroup(self, slot: _Slot) -> cgroups.WorkerCgroup | None:
        cg = self.cgroups[slot.index]
        if cg is None:
            cg = cgroups.create(f"w{slot.index}", self.limits)
            self.cgroups[slot.index] = cg
        else:
            cg.kill_all()  # what the previous worker's programs left behind
        return cg

    def _spawn(self, slot: _Slot) -> None:
        cg = self._cgroup(slot)
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        settings = WorkerSettings(
            index=slot.index, isolation=self.isolation, limits=self.limits, cgroup=cg.tests if cg is not None else None
        )
        if self.isolation == sandbox.BWRAP:
            from tasks.execution import bwrap

            proc = bwrap.start_worker(child_conn.fileno(), cg, self._library_paths)
            child_conn.close()
            try:
                parent_conn.send(settings)
            except OSError:
                pass  # bwrap failed at once: the sentinel check counts a failed start
        else:
            proc = self._ctx.Process(
                target=w.worker_main, args=(child_conn, settings), daemon=True, name=f"taco-eval-worker-{slot.index}"
            )
            proc.start()
            child_conn.close()
            if cg is not None:
                try:
                    cg.add(proc.pid)  # before it is ready, so before it forks anything
                except OSError:
                    pass
        slot.process, slot.conn, slot.ready, slot.eof, slot.owes_done = proc, parent_conn, False, False, False
        for fd, is_conn in ((parent_conn.fileno(), True), (proc.sentinel, False)):
            self._poller.register(fd, select.POLLIN)
            self._watched[fd] = (slot, is_conn)

    def _unwatch(self, slot: _Slot) -> None:
        for fd in [fd for fd, (watched, _) in self._watched.items() if watched is slot]:
            self._poller.unregister(fd)
            del self._watched[fd]

    def _replace(self, slot: _Slot) -> None:
        if not slot.ready:
            self._failed_starts += 1
            if self._failed_starts > defaults.WORKER_START_FAILURES:
                hint = (
                    "the bubblewrap sandbox cannot start here (see its message above; try --isolation seccomp)"
                    if self.isolation == sandbox.BWRAP
                    else "run with a main guard (`if __name__ == '__main__':`) when calling taco-eval from a script"
                )
                raise WorkerStartError(
                    f"execution workers keep dying before they are ready (exit code {slot.process.exitcode}); {hint}"
                )
        else:
            self._failed_starts = 0
        if slot.process is not None:
            self._unwatch(slot)
            if slot.process.is_alive():
                slot.process.kill()
            slot.process.join()
            _release(slot.process)
            slot.conn.close()
            _remove_scratch(slot)
        self._tests.forget_slot(slot.index)
        self.worker_restarts += 1
        self._spawn(slot)

    def worker_pids(self) -> list[int]:
        return [s.process.pid for s in self._slots if s.process is not None]

    # -- running -----------------------------------------------------------------------------
    def _budget_s(self, job: ProgramJob) -> float:
        # Why so generous: see defaults.PROGRAM_BUDGET_BASE_S.
        return defaults.PROGRAM_BUDGET_BASE_S + self.limits.timeout_s * defaults.PROGRAM_BUDGET_TIMEOUT_FACTOR * (
            len(job.inputs) + 1
        )

    def _send(self, slot: _Slot, msg: Any) -> None:
        """Every message to a worker goes through here (and is counted). The standard pickler:
        multiprocess's own (dill) takes ~50 us a message in pure Python."""
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            slot.conn.send_bytes(data)
        except (OSError, ValueError):
            return  # the worker just died: the sentinel check replaces it (and retries its job)
        self.transfer.messages += 1
        self.transfer.message_bytes += len(data)

    def _assign(self, slot: _Slot, run: ProgramRun, tests_key: str) -> None:
        job = run.job
        slot.job, slot.run, slot.stopped, slot.tests_key, slot.asked_tests = job, run, False, tests_key, False
        run.verdicts = []
        slot.started = time.perf_counter()
        slot.deadline = slot.started + self._budget_s(job)
        self._send(slot, RunRequest(job.job_id, job.code, job.fn_name, tests_key, len(job.inputs), job.stop_on_failure))

    def _share_tests(self, slot: _Slot) -> None:
        """Pass the running job's test set to the slot's worker: its message, then the memfd."""
        job = slot.job
        fd, size = self._tests.get(slot.tests_key, job.inputs, job.fn_name is not None)
        self._send(slot, (w.MSG_TESTS, slot.tests_key))
        try:
            with socket.socket(fileno=os.dup(slot.conn.fileno())) as sock:
                socket.send_fds(sock, [b"T"], [fd])
        except OSError:
            return  # the worker died: the sentinel check deals with it
        self._tests.shared(slot.tests_key, slot.index, size)
        self._drop_test_sets()

    def _drop_test_sets(self, keep: int | None = None) -> None:
        """Close test sets beyond what the store keeps; their holders let go of them too."""
        in_use = {s.tests_key for s in self._slots if s.job is not None and s.tests_key is not None}
        for key, holders in self._tests.evict(in_use, keep):
            for slot in self._slots:
                if slot.index in holders:
                    self._send(slot, (w.MSG_RELEASE, key))

    def run(self, jobs: Iterable[ProgramJob], judge: JudgeFn) -> Iterator[ProgramRun]:
        """Run every job; yield each ProgramRun as it finishes (completion order). `jobs` is
        consumed lazily: a stream of problems' programs is never held whole."""
        queue = JobQueue(jobs, self._keys, self.size, defaults.DISPATCH_LOOKAHEAD_JOBS)
        try:
            yield from self._run(queue, judge)
        finally:
            self._drop_test_sets(keep=0)  # released when done: the next run has other problems

    def _feed(self, slot: _Slot, queue: JobQueue, retries: list[ProgramRun]) -> None:
        """Give an idle, ready worker its next job: a retry first, else from the queue."""
        if slot.job is not None or not slot.ready:
            return
        if retries:
            run = retries.pop()
            key = self._keys(run.job)
        else:
            claimed = {s.tests_key for s in self._slots if s is not slot and s.tests_key is not None}
            taken = queue.take(slot.tests_key, claimed)
            if taken is None:
                return
            run, key = ProgramRun(taken[0]), taken[1]
        self._assign(slot, run, key)

    def _run(self, queue: JobQueue, judge: JudgeFn) -> Iterator[ProgramRun]:
        retries: list[ProgramRun] = []
        attempts: dict[int, int] = {}
        while True:
            for slot in self._slots:
                if slot.job is None and not slot.process.is_alive():
                    self._replace(slot)  # died while idle (killed from outside): no program to blame
                self._feed(slot, queue, retries)
            busy = [s for s in self._slots if s.job is not None]
            if not retries and not busy and queue.empty:
                return
            timeout = min((s.deadline for s in busy), default=time.perf_counter() + 1.0) - time.perf_counter()
            for fd, _ in self._poller.poll(max(0.0, timeout) * 1000):
                slot, is_conn = self._watched[fd]
                if is_conn and slot.process.is_alive():
                    done = self._on_message(slot, judge)
                    if done is not None:
                        self._feed(slot, queue, retries)  # the worker waits: before the caller's bookkeeping
                        yield done
            now = time.perf_counter()
            for slot in self._slots:
                overdue = slot.job is not None and now > slot.deadline
                if slot.process.is_alive() and not overdue:
                    continue
                while slot.job is not None and not slot.eof and slot.conn.poll():  # sent before dying
                    done = self._on_message(slot, judge)
                    if done is not None:
                        yield done
                run = slot.run
                slot.job = slot.run = None
                self._replace(slot)
                if run is None:
                    continue
                attempts[run.job.job_id] = attempts.get(run.job.job_id, 0) + 1
                if attempts[run.job.job_id] >= defaults.WORKER_RESPAWN_LIMIT:
                    run.crashed = "stopped answering within its budget" if overdue else "killed its execution worker"
                    run.elapsed_ms = (now - slot.started) * 1000.0
                    yield run
                else:
                    retries.append(run)

    def _on_message(self, slot: _Slot, judge: JudgeFn) -> ProgramRun | None:
        try:
            msg = pickle.loads(slot.conn.recv_bytes())
        except (EOFError, OSError):
            slot.eof = True  # the sentinel check replaces the worker
            return None
        except Exception:  # not even a message: nothing more from this worker can be trusted
            msg = None
        if not _valid_message(msg, slot.job):
            slot.eof = True
            slot.process.kill()  # the sentinel check replaces it and retries (or blames) the program
            return None
        kind = msg[0]
        if kind == w.MSG_READY:
            slot.ready = True
            self.peak_worker_rss_kb = max(self.peak_worker_rss_kb, msg[3])
            if self.isolation != sandbox.BWRAP:  # a bwrap worker's /tmp vanishes with its sandbox
                slot.scratch = msg[2]
            return None
        if kind == w.MSG_DONE and len(msg) == 3 and type(msg[2]) is int:
            self.peak_worker_rss_kb = max(self.peak_worker_rss_kb, msg[2])
            if slot.owes_done:  # the DONE of the job finished early: it comes before anything else
                slot.owes_done = False  # (job ids repeat across runs: it must not end the next one)
                return None
        run = slot.run
        if run is None or msg[1] != slot.job.job_id:
            return None  # late news of a job that is finished here
        if kind == w.MSG_NEED_TESTS:
            if slot.asked_tests:  # once per job: a worker asking again cannot be trusted
                slot.eof = True
                slot.process.kill()
                return None
            slot.asked_tests = True
            self._share_tests(slot)
            return None
        if kind == w.MSG_TEST:
            if slot.stopped:  # the worker ran one more test before it saw STOP
                return None
            _, _, index, outcome = msg
            job = slot.job
            verdict, go_on = judge(job, index, outcome)
            run.verdicts.append(verdict)
            if not go_on:
                slot.stopped = True
                self._send(slot, (w.MSG_STOP, job.job_id))
            elif w.awaits_verdict(job.stop_on_failure, index, outcome.status, len(job.inputs)):
                self._send(slot, (w.MSG_GO, job.job_id))
            if not w.runs_another_test(job.stop_on_failure, index, outcome.status, len(job.inputs), go_on):
                slot.owes_done = True
                return self._finish(slot)  # the worker can take the next job now
            return None
        if kind == w.MSG_COMPILE_ERROR:
            run.compile_error = msg[2]
        return self._finish(slot)

    def _finish(self, slot: _Slot) -> ProgramRun:
        run = slot.run
        run.elapsed_ms = (time.perf_counter() - slot.started) * 1000.0
        slot.job = slot.run = None
        return run
