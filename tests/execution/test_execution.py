"""The execution engine on real processes: every status, hostile programs, big data."""

import os
import time

import pytest

from storage.verdict_cache import VerdictCache
from tasks import statuses
from tasks.types import JUDGE_CASE_INSENSITIVE
from tasks.execution.limits import Limits
from tasks.execution.pool import ExecutionPool
from tasks.execution.worker import ProgramJob
from tests.helpers import call_problem, judge_many, judge_one, stdin_problem

ADD = stdin_problem(["1 2\n", "10 20\n", "-5 5\n"], ["3\n", "30\n", "0\n"])


def test_passed_stdin():
    r = judge_one(ADD, "a, b = map(int, input().split())\nprint(a + b)")
    assert (r.status, r.passed, r.tests_run, r.test_codes) == (statuses.PASSED, True, 3, [1, 1, 1])


def test_header_names_are_preloaded():
    # TACO prepends its import header, so programs use these without importing them.
    code = (
        "xs = list(map(int, sys.stdin.read().split()))\nprint(sum(xs) + 0*gcd(4, 6) + len(deque()) + int(np.int64(0)))"
    )
    assert judge_one(ADD, code).status == statuses.PASSED


def test_wrong_answer_and_early_stop():
    r = judge_one(ADD, "print(3)")
    assert (r.status, r.tests_run, r.test_codes) == (statuses.WRONG_ANSWER, 2, [1, 0])
    assert "expected '30', got '3'" in r.detail


def test_all_tests_mode_runs_every_test():
    r = judge_one(ADD, "print(3)", early_stop=False)
    assert (r.tests_run, r.test_codes) == (3, [1, 0, 0])


def test_compile_error_runs_no_test():
    r = judge_one(ADD, "def f(:\n  pass")
    assert (r.status, r.tests_run, r.test_codes) == (statuses.COMPILE_ERROR, 0, [-2])
    assert "SyntaxError" in r.detail


def test_runtime_error_keeps_the_traceback():
    r = judge_one(ADD, "x = {}\nprint(x['missing'])")
    assert (r.status, r.test_codes) == (statuses.RUNTIME_ERROR, [-3])
    assert "KeyError" in r.detail


def test_exit_codes():
    assert judge_one(ADD, "import sys\na,b=map(int,input().split())\nprint(a+b)\nsys.exit(0)").passed
    assert judge_one(ADD, "a,b=map(int,input().split())\nprint(a+b)\nexit()").passed
    assert judge_one(ADD, "import sys\nprint(3)\nsys.exit(3)").status == statuses.RUNTIME_ERROR
    r = judge_one(ADD, "import os,sys\na,b=map(int,input().split())\nprint(a+b)\nsys.stdout.flush()\nos._exit(0)")
    assert r.passed


def test_timeout_is_a_verdict():
    start = time.perf_counter()
    r = judge_one(ADD, "while True:\n    pass", timeout_s=0.5)
    assert (r.status, r.test_codes) == (statuses.TIMEOUT, [-1])
    assert time.perf_counter() - start < 10


def test_program_swallowing_the_alarm_and_interrupts_still_times_out():
    code = (
        "import signal\n"
        "for s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):\n"
        "    signal.signal(s, signal.SIG_IGN)\n"
        "while True:\n"
        "    try:\n"
        "        while True: pass\n"
        "    except BaseException:\n"
        "        pass\n"
    )
    start = time.perf_counter()
    r = judge_one(ADD, code, timeout_s=0.5)
    assert r.status == statuses.TIMEOUT
    assert time.perf_counter() - start < 10


def test_infinite_output_hits_the_output_cap():
    r = judge_one(ADD, "while True:\n    print('spam' * 1000)", output_limit_bytes=1 << 20)
    assert r.status == statuses.OUTPUT_LIMIT


def test_ten_gigabyte_allocation_is_a_memory_limit():
    assert judge_one(ADD, "x = bytearray(10 * 1024**3)\nprint(len(x))").status == statuses.MEMORY_LIMIT
    assert judge_one(ADD, "x = np.ones(10 * 1024**3 // 8)\nprint(x.sum())").status == statuses.MEMORY_LIMIT


def test_program_killing_its_worker_is_a_sandbox_violation_and_evaluation_goes_on():
    problem = ADD
    good = "a, b = map(int, input().split())\nprint(a + b)"
    killer = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"
    results, stats = judge_many(problem, [killer, good, good + "\n"], workers=1)
    assert results[0].status == statuses.SANDBOX_VIOLATION
    assert results[1].passed and results[2].passed
    assert stats.worker_restarts >= 1


def test_deleting_files_in_cwd_touches_only_the_test_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    decoy = tmp_path / "decoy.txt"
    decoy.write_text("keep me")
    code = (
        "import os, shutil\n"
        "for f in os.listdir('.'):\n    os.remove(f) if os.path.isfile(f) else shutil.rmtree(f)\n"
        "open('junk', 'w').write('x')\n"
        "a, b = map(int, input().split())\nprint(a + b)"
    )
    assert judge_one(ADD, code).passed
    assert decoy.read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["decoy.txt"]


def _run_raw(code, inputs, timeout_s=2.0):
    """Run a program through the pool and return its raw test outcomes."""
    outcomes = []

    def judge(job, index, outcome):
        outcomes.append(outcome)
        return outcome, True

    with ExecutionPool(1, Limits(timeout_s=timeout_s)) as pool:
        list(pool.run([ProgramJob(0, code, None, inputs)], judge))
        workers = pool.worker_pids()
    return outcomes, workers


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


SETSID_ESCAPE = (
    "import os, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"  # grandchild: own session, orphaned once its parent exits
    "        os.write(1, f'{os.getpid()}\\n'.encode())\n"
    "        time.sleep(120)\n"
    "    os._exit(0)\n"
    "time.sleep(0.3)\n"
)


@pytest.mark.parametrize("tail", ["", "while True: pass\n"], ids=["exits", "times-out"])
def test_setsid_double_fork_background_child_does_not_survive(tail):
    outcomes, _ = _run_raw(SETSID_ESCAPE + tail, [""], timeout_s=1.0)
    pids = [int(x) for x in outcomes[0].stdout.split()]
    assert len(pids) == 1
    assert not _alive(pids[0])


def test_multi_megabyte_input_and_output():
    n = 400_000
    data = " ".join(str(i) for i in range(n))  # ~2.6 MB in, ~2.6 MB out
    problem = stdin_problem([data + "\n"], [data + "\n"])
    r = judge_one(problem, "import sys\nsys.stdout.write(sys.stdin.read())", timeout_s=10)
    assert r.passed, r.detail
    r = judge_one(problem, "import sys\nxs = sys.stdin.read().split()\nxs[-1] = '0'\nprint(' '.join(xs))", timeout_s=10)
    assert r.status == statuses.WRONG_ANSWER and "token 400000" in r.detail


def test_call_based_function_and_wrapped_outputs():
    p = call_problem("add", [[1, 2], [3, 4]], [[3], [7]])
    assert judge_one(p, "def add(a, b):\n    return a + b").passed
    assert judge_one(p, "def add(a, b):\n    return [a + b]").status == statuses.WRONG_ANSWER


def test_class_solution_with_typing_names_from_the_header():
    p = call_problem("twoSum", [[[2, 7, 11, 15], 9], [[3, 2, 4], 6]], [[[0, 1]], [[1, 2]]])
    code = (
        "class Solution:\n"
        "    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
        "        seen = {}\n"
        "        for i, x in enumerate(nums):\n"
        "            if target - x in seen:\n"
        "                return (seen[target - x], i)\n"
        "            seen[x] = i\n"
    )
    assert judge_one(p, code).passed  # a tuple result is compared as a list


def test_call_based_missing_function_is_a_compile_error_as_in_taco():
    p = call_problem("add", [[1, 2]], [[3]])
    assert judge_one(p, "def plus(a, b):\n    return a + b").status == statuses.COMPILE_ERROR


def test_always_equal_object_and_frame_peeking_do_not_pass():
    p = call_problem("f", [[1]], [[42]])
    always_equal = "class E:\n    def __eq__(self, o): return True\ndef f(x):\n    return E()"
    assert judge_one(p, always_equal).status == statuses.WRONG_ANSWER
    peek = (
        "import sys, gc\n"
        "def f(x):\n"
        "    fr = sys._getframe()\n"
        "    while fr:\n"
        "        for v in fr.f_locals.values():\n"
        "            if isinstance(v, list) and v and v[0] == [42]:\n"
        "                return v[0][0]\n"
        "        fr = fr.f_back\n"
        "    for o in gc.get_objects():\n"
        "        if isinstance(o, list) and o == [[42]]:\n"
        "            return 42\n"
        "    return -1\n"
    )
    assert judge_one(p, peek).status == statuses.WRONG_ANSWER


def test_big_stack_thread_recursion():
    p = stdin_problem(["100000\n"], ["5000050000\n"])
    code = (
        "import sys, threading\n"
        "sys.setrecursionlimit(1 << 20)\n"
        "threading.stack_size(1 << 27)\n"
        "def s(n):\n    return 0 if n == 0 else n + s(n - 1)\n"
        "def main():\n    print(s(int(input())))\n"
        "threading.Thread(target=main).start()\n"
    )
    assert judge_one(p, code, timeout_s=10).passed


def test_case_insensitive_problem_end_to_end():
    p = stdin_problem(["1\n"], ["YES\n"], judge=JUDGE_CASE_INSENSITIVE)
    assert judge_one(p, "print('yes')").passed


def test_identical_programs_are_judged_once_and_cached_across_runs(tmp_path):
    code = "a, b = map(int, input().split())\nprint(a + b)"
    cache = VerdictCache(tmp_path / "v.sqlite")
    results, stats = judge_many(ADD, [code, code, code + "\n", code], cache=cache)
    assert stats.programs == 2 and stats.programs_executed == 2
    assert stats.tests_run == 6
    assert [r.passed for r in results] == [True] * 4
    results2, stats2 = judge_many(ADD, [code, code + "\n"], cache=cache)
    assert stats2.programs_executed == 0 and stats2.programs_cached == 2
    assert all(r.cached and r.passed for r in results2)


def test_throughput_smoke_many_programs_on_two_workers():
    codes = [f"a, b = map(int, input().split())\nprint(a + b + {i} - {i})" for i in range(30)]
    results, stats = judge_many(ADD, codes)
    assert all(r.passed for r in results)
    assert stats.tests_run == 90


def test_call_based_program_is_imported_not_run_as_main():
    # TACO's reference imports the program as module `tmp_sol`: its guarded test block never runs.
    code = (
        "def add(a, b):\n    return a + b\n"
        "if __name__ == '__main__':\n    import sys\n    print(add(1, 1))\n    sys.exit(3)\n"
        "assert __name__ == 'tmp_sol'\n"
    )
    r = judge_one(call_problem("add", [[1, 2]], [[3]]), code)
    assert r.status == statuses.PASSED, r.detail


def test_call_based_class_of_the_program_pickles():
    code = (
        "import pickle\nclass P:\n    def __init__(self, v):\n        self.v = v\n"
        "def f(x):\n    return pickle.loads(pickle.dumps(P(x))).v\n"
    )
    assert judge_one(call_problem("f", [[5]], [[5]]), code).status == statuses.PASSED
