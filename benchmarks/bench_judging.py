"""What the dispatcher spends judging one huge output: peak memory and time of `judge_test`.

Scenarios (the output cap is 64 MiB):
- `short`: 63 MiB of `1 1 1 …` against the expected output `1 1 1` (a wrong answer);
- `long`: the same output against an equal expected output (a correct answer, every token compared);
- `short10`, `long10`: the same with `10 10 10 …` (one-character strings are shared by Python, longer
  tokens each cost an object);
- `token`: one 63 MiB token against the expected output `1`.

Each scenario runs in a fresh interpreter; it prints the peak of Python allocations during the call
(tracemalloc), the growth of the process's peak RSS over what the inputs themselves hold, and the
wall time of the call (measured in a separate, untraced call: tracing slows allocation down).

    python benchmarks/bench_judging.py [--mib 63] [--scenario NAME]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.types import MODE_STDIN, Problem  # noqa: E402
from tasks.execution.runner import TestOutcome  # noqa: E402
from tasks.judging.rules import judge_test  # noqa: E402

SCENARIOS = ("short", "long", "short10", "long10", "token")


def _inputs(scenario: str, size: int) -> tuple[bytes, str]:
    if scenario == "token":
        return b"7" * size, "1"
    token = b"10 " if scenario.endswith("10") else b"1 "
    stdout = token * (size // len(token))
    return stdout, (" ".join([token.decode().strip()] * 3) if scenario.startswith("short") else stdout.decode())


def measure(scenario: str, mib: int) -> dict:
    stdout, expected = _inputs(scenario, mib * 1024 * 1024)
    problem = Problem(0, "bench", "", "", None, MODE_STDIN, [""], [expected])
    outcome = TestOutcome(None, stdout=stdout)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    verdict = judge_test(problem, 0, outcome)
    wall = time.perf_counter() - start
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    tracemalloc.start()
    judge_test(problem, 0, outcome)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "scenario": scenario,
        "status": verdict.status,
        "detail": verdict.detail[:60],
        "traced_peak_mib": round(peak / 2**20, 1),
        "rss_growth_mib": round(rss_growth / 1024, 1),
        "wall_s": round(wall, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=63)
    ap.add_argument("--scenario", choices=SCENARIOS)
    args = ap.parse_args()
    if args.scenario:
        print(json.dumps(measure(args.scenario, args.mib)))
        return
    print("| scenario | verdict | traced peak (MiB) | peak RSS growth (MiB) | time (s) |")
    print("|---|---|---|---|---|")
    for scenario in SCENARIOS:
        out = subprocess.run(
            [sys.executable, __file__, "--mib", str(args.mib), "--scenario", scenario],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        r = json.loads(out)
        print(f"| {scenario} | {r['status']} | {r['traced_peak_mib']} | {r['rss_growth_mib']} | {r['wall_s']} |")


if __name__ == "__main__":
    main()
