"""Test data crosses to a worker once per problem, and a failing program costs one test.

The pool counts every message it writes to a worker and every test set it passes (`transfer`):
these tests read those counters after real runs on real workers.
"""

from __future__ import annotations

import os

import pytest

from tasks import statuses
from tasks.types import JudgeConfig
from tasks.execution import testdata
from tasks.execution.dispatch import JobQueue
from tasks.execution.limits import Limits
from tasks.execution.pool import ExecutionPool
from tasks.execution.worker import ProgramJob
from tasks.judging.evaluate import Sample, evaluate_samples
from tests.helpers import call_problem, stdin_problem

ECHO_SUM = "import sys\nprint(sum(map(int, sys.stdin.read().split())))"


def _big_problem(task_id: int, tests: int = 20, numbers: int = 5000):
    """`tests` inputs of `numbers` numbers each (~25 KB), with their sums as outputs; problems
    with different task ids have different tests."""
    inputs = [" ".join(str(task_id + i + j) for j in range(numbers)) + "\n" for i in range(tests)]
    outputs = [f"{sum(task_id + i + j for j in range(numbers))}\n" for i in range(tests)]
    return stdin_problem(inputs, outputs, task_id=task_id)


def _evaluate(pool, problems, samples, **config):
    return evaluate_samples({p.task_id: p for p in problems}, samples, JudgeConfig(timeout_s=4.0, **config), pool=pool)


def test_test_inputs_cross_once_per_worker_not_once_per_program():
    problem = _big_problem(0)
    input_bytes = sum(len(x) for x in problem.inputs)
    passing = [Sample(0, i, f"{ECHO_SUM}\n# variant {i}") for i in range(12)]
    broken = [Sample(0, 100 + i, f"def broken(:\n# {i}") for i in range(6)]
    with ExecutionPool(2, Limits(timeout_s=4.0)) as pool:
        results, stats = _evaluate(pool, [problem], passing + broken)
        assert [r.status for r in results] == [statuses.PASSED] * 12 + [statuses.COMPILE_ERROR] * 6
        t = pool.transfer
        assert t.test_sets_built == 1
        assert 1 <= t.test_sets_shared <= 2  # one per worker at most, whatever the program count
        set_size = t.test_bytes_built
        assert set_size >= input_bytes
        assert t.test_bytes_shared == t.test_sets_shared * set_size
        # Requests, verdict answers, the test set's announcement: no test input in any message.
        assert t.message_bytes < input_bytes / 20

        # Twice the programs on the same pool: still at most one crossing per worker.
        before = pool.transfer.test_sets_shared
        more = [Sample(0, i, f"{ECHO_SUM}\n# more {i}") for i in range(24)]
        results, _ = _evaluate(pool, [problem], more)
        assert all(r.passed for r in results)
        assert 1 <= pool.transfer.test_sets_shared - before <= 2
        assert stats.peak_worker_rss_mb > 0


def test_one_worker_gets_each_problem_once_and_compile_errors_need_no_test_data():
    problems = [_big_problem(t, tests=10) for t in range(3)]
    samples = [Sample(t, i, f"{ECHO_SUM}\n# {t}/{i}") for t in range(3) for i in range(5)]
    samples += [Sample(t, 50 + t, "print(") for t in range(3)]
    only_broken = _big_problem(3, tests=10)
    with ExecutionPool(1, Limits(timeout_s=4.0)) as pool:
        results, _ = _evaluate(pool, problems + [only_broken], samples + [Sample(3, 0, "print(")])
        assert sum(r.passed for r in results) == 15
        assert pool.transfer.test_sets_shared == 3  # problem 3's programs never needed its tests
        assert pool.transfer.test_sets_built == 3


def test_a_program_failing_its_first_test_runs_it_once(tmp_path):
    """With early stop the worker waits for the first verdict instead of guessing ahead."""
    problem = _big_problem(0, tests=5, numbers=10)
    marks = tmp_path / "runs"
    code = f"open({str(marks)!r}, 'a').write('x')\nprint(-1)"
    with ExecutionPool(1, Limits(timeout_s=4.0)) as pool:
        results, _ = _evaluate(pool, [problem], [Sample(0, 0, code)])
        assert (results[0].status, results[0].tests_run) == (statuses.WRONG_ANSWER, 1)
        assert marks.read_text() == "x"
        # Without early stop every test runs.
        marks.unlink()
        results, _ = _evaluate(pool, [problem], [Sample(0, 1, code + "\n")], early_stop=False)
        assert results[0].tests_run == 5 and marks.read_text() == "x" * 5


def test_call_based_arguments_come_from_the_test_set_unchanged():
    inputs = [[[3, 1, 2], {"k": (1, 2)}, "é\ud800"], [[], {}, ""]]
    outputs = [[[1, 2, 3]], [[]]]
    problem = call_problem("f", inputs, outputs)
    # The function checks the exact types it receives (a tuple stays a tuple, as pickled).
    code = (
        "def f(xs, d, s):\n    assert isinstance(d.get('k', ()), tuple) and isinstance(s, str)\n    return sorted(xs)"
    )
    with ExecutionPool(1, Limits(timeout_s=4.0)) as pool:
        results, _ = _evaluate(pool, [problem], [Sample(0, 0, code)])
    assert results[0].status == statuses.PASSED, results[0].detail


# --- the pieces, on real memfds -----------------------------------------------------------------


def test_test_set_round_trip_and_sealing():
    stdin_inputs = ["1 2\n", "", "x" * 300_000, "caf\udce9\n"]
    fd, size = testdata.write_test_set(stdin_inputs, call_based=False)
    test_set = testdata.TestSet(fd)
    assert test_set.count == 4 and not test_set.call_based
    target = os.memfd_create("target")
    try:
        for i, text in enumerate(stdin_inputs):
            os.write(target, b"stale bytes that must go " * 20_000)
            test_set.input(i).copy_to(target)
            assert os.lseek(target, 0, os.SEEK_CUR) == 0
            assert os.pread(target, 1 << 20, 0) == text.encode("utf-8", "surrogateescape")
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"changed", size - 1)  # sealed: not even its writer can change it
    finally:
        os.close(target)
        test_set.close()
    fd, _ = testdata.write_test_set([[1, (2, 3)], [None]], call_based=True)
    test_set = testdata.TestSet(fd)
    assert test_set.input(0) == [1, (2, 3)] and test_set.input(1) == [None]
    test_set.close()
    with pytest.raises(TypeError, match="must be text"):
        testdata.write_test_set([["not", "text"]], call_based=False)


def test_worker_cache_keeps_only_its_capacity():
    cache = testdata.TestSetCache(2)
    fds = [testdata.write_test_set([str(i)], call_based=False)[0] for i in range(3)]
    for i, fd in enumerate(fds):
        cache.put(f"k{i}", fd)
    assert cache.keys() == ["k1", "k2"]
    with pytest.raises(OSError):
        os.fstat(fds[0])  # the evicted set's descriptor is closed
    cache.release("k1")
    assert cache.keys() == ["k2"]
    cache.close()
    with pytest.raises(OSError):
        os.fstat(fds[2])


def test_job_queue_keeps_problems_on_their_worker_and_never_idles_a_worker():
    jobs = [ProgramJob(i, "", None, [], tests_key=key) for i, key in enumerate("aaabbbccdd")]
    pulled = []

    def stream():
        for job in jobs:
            pulled.append(job.job_id)
            yield job

    queue = JobQueue(stream(), lambda job: job.tests_key, spread=2, max_ahead=100)

    def take(prefer, claimed):
        job, key = queue.take(prefer, claimed)
        return job.job_id, key

    assert take(None, set()) == (0, "a")
    assert pulled == [0, 1, 2, 3, 4, 5, 6]  # only as far as one problem more than workers
    assert take(None, {"a"}) == (3, "b")  # another worker: a problem nobody is on
    assert take("a", {"b"}) == (1, "a")  # back to its own problem
    assert take("b", {"a"}) == (4, "b")
    assert take("a", {"b"}) == (2, "a")
    assert take("a", {"b"}) == (6, "c")  # its problem is done: one nobody is on
    assert take("c", {"b"}) == (7, "c")
    assert take("c", {"b"}) == (8, "d")
    assert take("d", {"b"}) == (9, "d")
    assert take("d", {"b"}) == (5, "b")  # only a claimed problem is left: share it, never idle
    assert queue.take("b", set()) is None and queue.empty
