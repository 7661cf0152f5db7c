"""Recursion: unbounded (RecursionError), deep and legitimate in a big-stack thread (passes),
and unbounded with the limit lifted in a big-stack thread (dies on a limit, never hangs)."""

from conftest import SLOW_TIMEOUT_S, stdin_problem

ATTACK = "recursion"


def test_unbounded_recursion(attack, level, record):
    r = attack.run(level, "def f(n):\n    return f(n + 1)\nf(0)\n", stdin_problem(["1\n"], ["1\n"]))
    assert r.status == "runtime_error" and "RecursionError" in r.detail
    record(level, "runtime_error (RecursionError)", "unbounded recursion")


def test_deep_recursion_in_a_big_stack_thread(attack, level, record):
    code = (
        "import sys, threading\nsys.setrecursionlimit(1 << 20)\nthreading.stack_size(512 * 1024 * 1024)\n"
        "def s(n):\n    return 0 if n == 0 else n + s(n - 1)\n"
        "def main():\n    print(s(int(input())))\nthreading.Thread(target=main).start()\n"
    )
    r = attack.run(level, code, stdin_problem(["200000\n"], ["20000100000\n"]), timeout_s=SLOW_TIMEOUT_S)
    assert r.status == "passed", r.detail
    record(level, "passed", "deep recursion (200k) in a 512 MB-stack thread")


def test_unbounded_recursion_in_a_big_stack_thread(attack, level, record):
    code = (
        "import sys, threading\nsys.setrecursionlimit(10 ** 9)\nthreading.stack_size(512 * 1024 * 1024)\n"
        "def f(n):\n    return f(n + 1) + 1\nthreading.Thread(target=f, args=(0,)).start()\n"
    )
    r = attack.run(level, code, stdin_problem(["1\n"], ["1\n"]), timeout_s=SLOW_TIMEOUT_S)
    assert r.status in ("runtime_error", "memory_limit", "timeout"), r.detail
    record(level, r.status, "unbounded recursion, limit lifted, 512 MB-stack thread")
