"""Execution throughput: taco-eval's engine vs a naive TACO-style baseline, in one run.

Workload: the bundled sample problems with their reference solutions, each program copied into
`--variants` textually different versions (so nothing is deduplicated), every test run
(`--all-tests` semantics), verdict cache off.

Baseline (what TACO's reference effectively does): serially, one fresh `python` process per test,
with TACO's import header (numpy included) prepended to the program; call-based programs go
through a tiny driver that calls the function and prints the JSON result. It is timed on the first
`--baseline-tests` tests of the same workload, as it is slow.

Per-test overhead: one worker running a program that does nothing, wall time / tests.

    python benchmarks/bench_execute.py [--variants 5] [--workers N] [--baseline-tests 120]
                                       [--isolation auto|process|seccomp|bwrap|all]

`--isolation all` also prints the per-test overhead of every level available here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.types import MODE_CALL, MODE_STDIN, JudgeConfig, Problem  # noqa: E402
from tasks.judging.evaluate import Sample, evaluate_samples  # noqa: E402
from tasks.execution import sandbox  # noqa: E402
from tasks.execution.pool import default_workers  # noqa: E402
from taco_baseline import TACO_HEADER  # noqa: E402
from tasks.judging.rules import compare_return, compare_stdout  # noqa: E402
from tasks.problems import load_problems, read_raw_rows  # noqa: E402

CALL_DRIVER = (
    "\nimport json as _json\n_args = _json.loads(sys.argv[1])\n"
    "_t = Solution() if 'Solution' in globals() else None\n"
    "_f = getattr(_t, {fn!r}) if _t is not None and hasattr(_t, {fn!r}) else globals()[{fn!r}]\n"
    "_r = _f(*_args)\nprint(_json.dumps(list(_r) if isinstance(_r, tuple) else _r))\n"
)


def workload(variants: int):
    loaded = load_problems("samples")
    rows, _ = read_raw_rows("samples")
    samples = []
    for p in loaded.problems:
        code = json.loads(rows[p.task_id]["solutions"])[0]
        for v in range(variants):
            samples.append(Sample(p.task_id, v, f"{code}\n# variant {v}\n"))
    return loaded, samples


def run_baseline(problems, samples, max_tests: int, timeout: float) -> tuple[int, int, float]:
    """(tests run, tests passed, seconds)."""
    tests = passed = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for s in samples:
            p = problems[s.task_id]
            for i in range(p.num_tests):
                if tests >= max_tests:
                    return tests, passed, time.perf_counter() - start
                if p.mode == MODE_CALL:
                    prog = TACO_HEADER + s.code + CALL_DRIVER.format(fn=p.fn_name)
                    argv, stdin = [sys.executable, "-c", prog, json.dumps(p.inputs[i])], ""
                else:
                    argv, stdin = [sys.executable, "-c", TACO_HEADER + s.code], p.inputs[i]
                try:
                    out = subprocess.run(
                        argv, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=tmp
                    ).stdout
                except subprocess.TimeoutExpired:
                    out = ""
                tests += 1
                if p.mode == MODE_CALL:
                    passed += compare_return(out.strip() or "null", p.outputs[i]) is None
                else:
                    passed += compare_stdout(out, p.outputs[i], p.judge) is None
    return tests, passed, time.perf_counter() - start


def run_engine(problems, samples, workers: int, timeout: float, isolation: str = "process"):
    config = JudgeConfig(timeout_s=timeout, early_stop=False, isolation=isolation)
    return evaluate_samples(problems, samples, config, workers=workers)


def overhead_ms(tests: int, timeout: float, isolation: str = "process") -> float:
    """Per-test cost of the engine itself: one worker, an empty program, empty tests."""

    def noop(n: int) -> Problem:
        return Problem(0, "noop", "", "", None, MODE_STDIN, [""] * n, [""] * n)

    config = JudgeConfig(timeout_s=timeout, early_stop=False, isolation=isolation)
    _, many = evaluate_samples({0: noop(tests)}, [Sample(0, 0, "pass")], config, workers=1)
    _, one = evaluate_samples({0: noop(1)}, [Sample(0, 0, "pass")], config, workers=1)
    # The difference removes pool start-up (spawn + imports), paid once per run.
    return (many.wall_s - one.wall_s) * 1000 / (tests - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", type=int, default=5)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--baseline-tests", type=int, default=120)
    ap.add_argument("--overhead-tests", type=int, default=400)
    ap.add_argument("--timeout", type=float, default=4.0)
    ap.add_argument(
        "--isolation",
        default="process",
        help="level for the engine runs: auto, process, seccomp, bwrap, or 'all' (engine runs at "
        "the strongest, overhead measured at every available level); default process",
    )
    args = ap.parse_args()
    levels = sandbox.available_levels() if args.isolation == "all" else [sandbox.resolve(args.isolation)]
    isolation = levels[-1]

    loaded, samples = workload(args.variants)
    problems = loaded.by_task_id()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, python "
        f"{platform.python_version()}; workers={args.workers}; isolation={isolation}"
    )
    print(
        f"workload: {len(loaded.problems)} problems x {args.variants} variants = {len(samples)} programs, "
        f"{sum(problems[s.task_id].num_tests for s in samples)} tests, all tests run, no dedup, no cache"
    )

    results, stats = run_engine(problems, samples, args.workers, args.timeout, isolation)
    engine_tps = stats.tests_run / stats.wall_s
    print(
        f"taco-eval : {stats.tests_run:5d} tests in {stats.wall_s:7.2f} s = {engine_tps:8.1f} tests/s "
        f"({sum(r.passed for r in results)}/{len(results)} programs passed)"
    )

    b_tests, b_passed, b_wall = run_baseline(problems, samples, args.baseline_tests, args.timeout)
    base_tps = b_tests / b_wall
    print(
        f"baseline  : {b_tests:5d} tests in {b_wall:7.2f} s = {base_tps:8.1f} tests/s "
        f"({b_passed}/{b_tests} tests passed; {1000 * b_wall / b_tests:.1f} ms per test)"
    )
    print(f"speed-up  : {engine_tps / base_tps:.1f}x tests/s")

    for level in levels:
        print(
            f"overhead  : {overhead_ms(args.overhead_tests, args.timeout, level):.2f} ms per test at isolation "
            f"{level} (1 worker, empty program, {args.overhead_tests} tests, pool start-up subtracted)"
        )


if __name__ == "__main__":
    main()
