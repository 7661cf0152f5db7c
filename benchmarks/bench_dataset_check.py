"""How long `taco-eval check-dataset` takes, measured on real problems and extrapolated to TACO's test split.

Workload: the 40 real Codeforces problems of tests/data/codecontests_sample (1188 tests), checked as
`check-dataset --max-solutions K` does it (every test, no early stop, verdict cache off). A TACO row
carries many distinct solutions, these rows carry one: each reference is copied into K textually
different versions so that nothing is deduplicated and K programs per problem really run.

Baseline, in the same run: the same tests with a program that only reads its input (the engine's
own cost per test: fork, sandbox, pipes, judge). real / baseline says how much of a check is the
solutions' own work.

Extrapolation (printed): seconds ≈ problems × K × tests per problem × seconds per test / cores, with
seconds per test either wall × workers / tests as measured here (a shared machine inflates it) or
the CPU time per test (what an idle machine needs; measurable under `--isolation process` or
`seccomp`, not `bwrap`). Timeouts are extra: each test a solution runs past the limit costs the
whole limit (4 s) of one core.

    python benchmarks/bench_dataset_check.py [--k 5] [--workers N] [--isolation auto]
                                             [--problems 1000] [--tests-per-problem 200] [--cores 2,16]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.dataset_check.check import check_dataset  # noqa: E402
from tasks.execution import sandbox  # noqa: E402
from tasks.execution.pool import default_workers  # noqa: E402
from tasks.problems import ReferenceSolutions, load_problems  # noqa: E402
from tasks.types import JudgeConfig  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "codecontests_sample" / "problems.jsonl"
READ_ONLY = "import sys\nsys.stdin.read()\n"


def with_solutions(loaded, codes_for):
    """`loaded` whose every problem carries the reference solutions `codes_for(task_id, first)`."""
    solutions = {
        t: ReferenceSolutions(len(codes_for(t, refs.codes[0])), tuple(codes_for(t, refs.codes[0])))
        for t, refs in loaded.solutions.items()
    }
    return dataclasses.replace(loaded, solutions=solutions)


def _cpu_s() -> float:
    """CPU time of this process and its reaped descendants. Under `bwrap` the sandbox's processes'
    time does not reach here (it reads as ~0): measure CPU with `--isolation process` or `seccomp`."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_check(loaded, judge, workers):
    cpu = _cpu_s()
    rows, stats = check_dataset(loaded, judge, workers=workers)  # its pool ends (and is reaped) inside
    cpu = _cpu_s() - cpu
    tests = max(1, stats.tests_run)
    return rows, {
        "programs": stats.programs,
        "tests": stats.tests_run,
        "wall_s": round(stats.wall_s, 2),
        "tests_per_s": round(stats.tests_per_s, 1),
        # Wall time × workers per test: what a test costs on this (possibly shared) machine.
        "core_ms_per_test": round(1000 * stats.wall_s * workers / tests, 2),
        # CPU time per test: what it costs on an idle one (None where it cannot be measured).
        "cpu_ms_per_test": round(1000 * cpu / tests, 2) if cpu > 0.1 * stats.wall_s else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, default=5, help="reference solutions per problem (default 5)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--isolation", default="auto")
    ap.add_argument("--timeout", type=float, default=4.0)
    ap.add_argument("--problems", type=int, default=1000, help="TACO's test split: 1000 problems")
    ap.add_argument("--tests-per-problem", type=int, default=200)
    ap.add_argument("--cores", default="2,16", help="core counts to extrapolate to")
    args = ap.parse_args()
    workers = args.workers or default_workers()
    judge = JudgeConfig(timeout_s=args.timeout, isolation=sandbox.resolve(args.isolation))
    loaded = load_problems(str(DATA), max_solutions=1)

    variants = with_solutions(loaded, lambda t, code: [code + f"\n# variant {j}\n" for j in range(args.k)])
    rows, real = timed_check(variants, judge, workers)
    not_verified = [r.task_id for r in rows if r.status != "verified"]
    _, base = timed_check(with_solutions(loaded, lambda t, code: [READ_ONLY]), judge, workers)

    tests = args.problems * args.k * args.tests_per_problem

    def estimate(ms_per_test):
        if ms_per_test is None:
            return None
        return {
            f"{cores} cores": f"{tests * ms_per_test / 1000 / cores / 3600:.2f} h"
            for cores in (int(c) for c in args.cores.split(","))
        }

    print(
        json.dumps(
            {
                "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
                "workers": workers,
                "isolation": judge.isolation,
                "k": args.k,
                "check": real,
                "not_verified": not_verified,
                "baseline_read_only_program": base,
                "real_over_baseline_per_test": round(real["core_ms_per_test"] / base["core_ms_per_test"], 2),
                "extrapolation": {
                    "workload": f"{args.problems} problems x {args.k} solutions x {args.tests_per_problem} tests "
                    f"= {tests} test runs",
                    "from_wall_time_here": estimate(real["core_ms_per_test"]),
                    "from_cpu_time_idle_machine": estimate(real["cpu_ms_per_test"]),
                    "timeouts": f"each test run past the limit adds {args.timeout:g} s of one core",
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
