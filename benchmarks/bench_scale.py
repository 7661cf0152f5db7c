"""Execution at TACO scale: a TACO-shaped synthetic dataset and a realistic mix of generations.

Dataset (written to a temp dir, one pickled problem per file, read back lazily so the dispatcher
holds only the problems in flight): `--problems` stdin problems ("print the sum of the numbers")
of about `--tests` tests each; each problem's test sizes are heavy-tailed (a few max tests of a
size drawn from a Pareto law, up to several MB, and smaller ones before them) and one problem in
300 (at least one) has 20 MB+ of tests.

Generations, `--n` per problem, as a weak model writes them (a real SmolLM2 run: 89 compile
errors, 83 runtime errors, 116 wrong answers out of 300): 6 compile errors, 5 wrong answers at the
first test, 5 runtime errors at the first test, 1 wrong answer mid-way, 1 pass, 2 duplicates of
the above; every tenth problem swaps a wrong answer for a timeout.

It prints, all measured in this one run:
1. per-program cost by kind (2 workers, pool started): a batch of programs of one kind straight
   through the pool (judge included), on a problem with tiny tests and on one with 20 MB of tests;
   wall and CPU (dispatcher + workers + test children: steadier on a loaded machine) per program;
2. a fresh interpreter per test (TACO's way: `python -c header+program`, serial) timed on a
   sample of the same programs right after, and the ratio for a first-test failure;
3. the TACO-shaped run through `evaluate_samples`: programs/s, tests/s, verdict mix, the ratio to
   the fresh interpreter, the test data that crossed to workers against what shipping tests with
   every program would move, peak RSS of the dispatcher (this process, reset before the run) and
   of the workers;
4. wall and CPU growth from every tenth problem (every fourth with --quick: a sample spread over
   the dataset, as heavy-tailed as the rest) to all of them.

    python benchmarks/bench_scale.py [--quick] [--problems 1000] [--tests 200] [--n 20]
                                     [--workers 2] [--timeout 1.0] [--isolation process]

`--quick` (about a minute on an idle 2-core machine): 16 problems, batches of 80.
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.types import MODE_STDIN, JudgeConfig, Problem  # noqa: E402
from tasks.execution import sandbox  # noqa: E402
from tasks.execution.pool import ExecutionPool  # noqa: E402
from tasks.execution.worker import ProgramJob  # noqa: E402
from tasks.judging.evaluate import Sample, _verdict_from_run, evaluate_samples, limits_for  # noqa: E402
from taco_baseline import TACO_HEADER  # noqa: E402
from tasks.judging.rules import compare_stdout, judge_test  # noqa: E402

SUM = "import sys\ndata = sys.stdin.buffer.read().split()\nprint(sum(map(int, data[1:])))\n"
KINDS = {
    "compile error": "def solve(:\n    return 0\n",
    "first-test wrong answer": "print('x')\n",
    "first-test runtime error": "n = int(input())\nprint(values[n])\n",
    "timeout": "while True:\n    pass\n",
    # Right while a test has at most {limit} numbers: wrong from the middle of the tests on.
    "mid-test wrong answer": "import sys\ndata = sys.stdin.buffer.read().split()\n"
    "print(sum(map(int, data[1:])) + (len(data) > {limit}))\n",
    "pass": SUM,
}
CHEAP = ("compile error", "first-test wrong answer", "first-test runtime error")
MIX = {  # per problem, out of --n = 20 (the two duplicates repeat the first two programs)
    "compile error": 6,
    "first-test wrong answer": 5,
    "first-test runtime error": 5,
    "mid-test wrong answer": 1,
    "pass": 1,
}
TOKEN_BYTES = 7  # "123456 "


# --- the synthetic dataset ---------------------------------------------------------------------


class _Numbers:
    """Inputs of m numbers, built fast from one random block (their sums known in advance)."""

    def __init__(self, rng: random.Random, block: int = 4096):
        self.tokens = [str(rng.randint(100000, 999999)) for _ in range(block)]
        self.prefix = [0]
        for t in self.tokens:
            self.prefix.append(self.prefix[-1] + int(t))
        self.block_text = " ".join(self.tokens) + " "

    def test(self, m: int) -> tuple[str, str]:
        q, r = divmod(m, len(self.tokens))
        body = self.block_text * q + " ".join(self.tokens[:r])
        return f"{m}\n{body.rstrip()}\n", f"{q * self.prefix[-1] + self.prefix[r]}\n"


def _sizes(rng: random.Random, tests: int, big: str | None) -> list[int]:
    """Numbers per test: smaller tests first, then 1-5 max tests (TACO problems are shaped so).
    A 20 MB+ problem is "wide" (22 MB over every test) or "tall" (4 max tests of 5.5 MB)."""
    if big == "wide":
        return [22_000_000 // TOKEN_BYTES // tests] * tests
    if big == "tall":
        max_bytes, k = 5_500_000, 4
    else:
        max_bytes, k = min(4_000_000, int(20 / (1 - rng.random()) ** 2)), rng.randint(1, 5)  # Pareto, alpha 1/2
    small_max = max(8, max_bytes // 50)
    small = [int(8 * (small_max / 8) ** rng.random()) for _ in range(tests - k)]
    large = [max_bytes] * k if big == "tall" else [rng.randint(max_bytes // 2, max_bytes) for _ in range(k)]
    return [max(1, b // TOKEN_BYTES) for b in sorted(small) + large]


def _big_kind(index: int, problems: int) -> str | None:
    every = max(1, problems // max(1, problems // 300))
    if index % every != every // 2:
        return None
    return "tall" if (index // every) % 2 else "wide"


def _problem(task_id: int, numbers: _Numbers, counts: list[int]) -> Problem:
    pairs = [numbers.test(m) for m in counts]
    inputs, outputs = [a for a, _ in pairs], [b for _, b in pairs]
    return Problem(task_id, f"synthetic-{task_id}", "sum", "", None, MODE_STDIN, inputs, outputs)


def write_dataset(folder: Path, problems: int, tests: int, seed: int) -> list[int]:
    """Write the problems (pickled), one at a time; return each problem's input bytes."""
    rng = random.Random(seed)
    numbers = _Numbers(rng)
    sizes = []
    for i in range(problems):
        count = max(10, int(rng.gauss(tests, tests / 4)))
        problem = _problem(i, numbers, _sizes(rng, count, _big_kind(i, problems)))
        (folder / f"{i}.pickle").write_bytes(pickle.dumps(problem, protocol=pickle.HIGHEST_PROTOCOL))
        sizes.append(sum(len(x) for x in problem.inputs))
    return sizes


class DiskProblems(Mapping):
    """The dataset as a mapping that reads a problem from disk each time it is asked for."""

    def __init__(self, folder: Path, count: int):
        self.folder, self.count = folder, count

    def __getitem__(self, task_id: int) -> Problem:
        if not (isinstance(task_id, int) and 0 <= task_id < self.count):
            raise KeyError(task_id)
        return pickle.loads((self.folder / f"{task_id}.pickle").read_bytes())

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.count))

    def __len__(self) -> int:
        return self.count


def _limit_mid(problem: Problem) -> int:
    """A token count that the middle test exceeds and the first does not."""
    counts = sorted(int(x.split("\n", 1)[0]) + 1 for x in problem.inputs)
    return counts[len(counts) // 2] - 1


def generations(problems: DiskProblems, n: int, limits: dict[int, int]) -> list[Sample]:
    samples = []
    for task_id in problems:
        codes = []
        for kind, count in MIX.items():
            if task_id % 10 == 5 and kind == "first-test wrong answer":
                codes.append(KINDS["timeout"])
                count -= 1
            codes += [KINDS[kind].format(limit=limits[task_id]) + f"# sample {len(codes) + j}\n" for j in range(count)]
        codes = (codes + codes[:2])[:n]  # the duplicates, as at low temperature
        samples += [Sample(task_id, i, code) for i, code in enumerate(codes)]
    return samples


# --- measurements ------------------------------------------------------------------------------


def _vm_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: the peak (VmHWM) := now (VmRSS)
        return True
    except OSError:
        return False


def _tree_cpu_ms(pid: int, tick: int) -> float:
    """CPU of a process, of its reaped children, and of its live descendants (a bwrap worker is
    a descendant of the process the pool started)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        return 0.0
    own = sum(int(x) for x in fields[11:15]) * 1000 / tick  # utime stime cutime cstime
    return own + sum(_tree_cpu_ms(child, tick) for child in children)


def _cpu_ms(pool: ExecutionPool) -> float:
    """CPU time so far of this process, the workers and the test children they reaped (10 ms ticks)."""
    own = os.times()
    tick = os.sysconf("SC_CLK_TCK")
    return (own.user + own.system) * 1000 + sum(_tree_cpu_ms(pid, tick) for pid in pool.worker_pids())


def per_kind_costs(pool: ExecutionPool, problems: list[Problem], counts: dict[str, int], rounds: int):
    """For each kind and problem: (wall ms per program, CPU ms per program, tests per program,
    status), the faster of `rounds` batches of `counts[kind]` programs straight through the pool
    (the judge included; the problem's verdict-cache hash is a per-problem cost, printed apart)."""
    rows = []
    for kind, template in KINDS.items():
        cells = []
        for problem in problems:
            code = template.format(limit=_limit_mid(problem))

            def judge(job, index, outcome, problem=problem):
                verdict = judge_test(problem, index, outcome)
                return verdict, verdict.passed

            best = None
            for r in range(rounds if kind in CHEAP else 1):
                jobs = [
                    ProgramJob(i, f"{code}# {kind} {r} {i}\n", None, problem.inputs, tests_key=problem.problem_id)
                    for i in range(counts.get(kind, counts["default"]))
                ]
                cpu, start = _cpu_ms(pool), time.perf_counter()
                runs = list(pool.run(jobs, judge))
                wall, cpu_after = time.perf_counter() - start, _cpu_ms(pool)
                cell = (
                    wall * 1000 / len(jobs),
                    (cpu_after - cpu) / len(jobs),
                    sum(len(r.verdicts) for r in runs) / len(runs),
                    _verdict_from_run(runs[0], problem.num_tests)["status"],
                )
                best = cell if best is None or cell[0] < best[0] else best
            cells.append(best)
        rows.append((kind, cells))
    return rows


def _children_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def baseline(problems: DiskProblems, samples: list[Sample], max_tests: int, timeout: float) -> tuple[int, float, float]:
    """TACO's way on a sample of the programs (one of each kind in turn): a fresh `python` with
    TACO's header per test, serial, stopping at the first failure. Returns (tests run, wall
    seconds, CPU ms of those interpreters)."""
    by_kind: dict[str, Sample] = {}
    for s in samples:
        by_kind.setdefault(s.code.split("# sample")[0], s)
    tests = 0
    start, cpu = time.perf_counter(), _children_cpu_ms()
    with tempfile.TemporaryDirectory() as tmp:
        for s in by_kind.values():
            problem = problems[s.task_id]
            for i in range(problem.num_tests):
                if tests >= max_tests:
                    return tests, time.perf_counter() - start, _children_cpu_ms() - cpu
                tests += 1
                try:
                    out = subprocess.run(
                        [sys.executable, "-c", TACO_HEADER + s.code],
                        input=problem.inputs[i],
                        capture_output=True,
                        text=True,
                        timeout=timeout,
                        cwd=tmp,
                    )
                except subprocess.TimeoutExpired:
                    break
                if out.returncode != 0 or compare_stdout(out.stdout, problem.outputs[i], problem.judge) is not None:
                    break
    return tests, time.perf_counter() - start, _children_cpu_ms() - cpu


def _progress(label: str, samples: int):
    """A progress sink for evaluate_samples: a line on stderr every few seconds."""
    start = time.perf_counter()
    seen = {"done": 0, "expected": samples, "tests": 0, "shown_at": 0.0}

    def show(event) -> None:
        seen["done"] += event.done
        seen["expected"] += event.expected
        seen["tests"] += event.work
        elapsed = time.perf_counter() - start
        if elapsed - seen["shown_at"] >= 5 or seen["done"] == seen["expected"]:
            seen["shown_at"] = elapsed
            print(
                f"   [{label}: {seen['done']}/{seen['expected']} programs, {seen['tests']} tests, {elapsed:.0f} s]",
                file=sys.stderr,
                flush=True,
            )

    return show


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="about a minute: 16 problems, smaller batches")
    ap.add_argument("--problems", type=int, default=None, help="default 1000 (16 with --quick)")
    ap.add_argument("--tests", type=int, default=200, help="tests per problem, on average")
    ap.add_argument("--n", type=int, default=20, help="samples per problem")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1.0, help="per test, s (TACO's is 4; 1 keeps the run short)")
    ap.add_argument("--isolation", default="process", help="auto, process, seccomp or bwrap (default process)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    count = args.problems or (16 if args.quick else 1000)
    stride = 4 if args.quick else 10
    # A sample spread over the dataset; without the few 20 MB+ problems: in it one would weigh as ten.
    spread = {t for t in range(count) if t % stride == 1 and _big_kind(t, count) is None}
    growth_count = len(spread)
    cheap = 80 if args.quick else 200
    counts = {"default": cheap, "timeout": 2 if args.quick else 4, "mid-test wrong answer": 2 if args.quick else 6}
    counts["pass"] = counts["mid-test wrong answer"]
    baseline_tests = 12 if args.quick else 40
    isolation = sandbox.resolve(args.isolation)
    config = JudgeConfig(timeout_s=args.timeout, isolation=isolation)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, load "
        f"{os.getloadavg()[0]:.1f}; python {platform.python_version()}; {args.workers} workers, isolation "
        f"{isolation}, timeout {args.timeout:g} s, early stop, no verdict cache"
    )
    with tempfile.TemporaryDirectory(prefix="taco-eval-bench-scale-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        sizes = write_dataset(folder, count, args.tests, args.seed)
        problems = DiskProblems(folder, count)
        limits = {t: _limit_mid(problems[t]) for t in problems}
        samples = generations(problems, args.n, limits)
        tests_total = sum(problems[t].num_tests for t in problems)
        print(
            f"dataset: {count} problems, {tests_total} tests, {_mb(sum(sizes))} of inputs; per problem median "
            f"{sorted(sizes)[len(sizes) // 2] / 1024:.1f} KB, max {_mb(max(sizes))}, "
            f"{sum(s >= 20 * 2**20 for s in sizes)} with 20 MB+; written in {time.perf_counter() - start:.1f} s to a temp dir"
        )
        print(
            f"generations: {len(samples)} samples, per problem: "
            + ", ".join(f"{k} {v}" for k, v in MIX.items())
            + f", {args.n - sum(MIX.values())} duplicates; every tenth problem a timeout instead of a wrong answer"
        )

        with ExecutionPool(args.workers, limits_for(config), isolation) as pool:
            numbers = _Numbers(random.Random(args.seed + 1))
            tiny = _problem(-1, numbers, [1 + i // 20 for i in range(200)])
            wide = _problem(-2, numbers, [100_000 // TOKEN_BYTES + i for i in range(200)])
            evaluate_samples({-1: tiny}, [Sample(-1, 0, SUM)], config, pool=pool)  # pool start-up excluded
            hash_start = time.perf_counter()
            wide.content_hash()
            hash_ms = (time.perf_counter() - hash_start) * 1000
            print(
                f"\n1. per-program cost by kind ({args.workers} workers; the faster of 2 batches of {cheap} programs, one "
                f"smaller batch for the slow kinds): wall ms/program [CPU ms/program, all processes], tests/program"
            )
            print(
                f"   {'':26s} {'200 tests x ~10 B':>32s} {'200 tests x 100 KB = ' + _mb(sum(map(len, wide.inputs))):>36s}"
            )
            rows = per_kind_costs(pool, [tiny, wide], counts, rounds=2)
            for kind, cells in rows:
                text = [
                    f"{wall:9.2f} ms [{cpu:.2f}] {tests:6.1f} tests {status[:7]:7s}"
                    for wall, cpu, tests, status in cells
                ]
                print(f"   {kind:26s} {text[0]} {text[1]}  {cells[1][0] / cells[0][0]:.2f}x")
            print(
                f"   per problem, once: its verdict-cache hash {hash_ms:.0f} ms for the 20 MB problem "
                "(evaluate_samples), its test set built once and passed once per worker"
            )

            # Right after the per-kind costs: the machine's load is then about the same for both.
            tests, wall, b_cpu = baseline(problems, samples, baseline_tests, args.timeout * 4)
            b_wall, b_cpu = wall * 1000 / tests, b_cpu / tests
            fail_wall, fail_cpu = next(cells[0][:2] for kind, cells in rows if kind == "first-test wrong answer")
            print(
                f"\n2. a fresh python per test (TACO's way, serial), {tests} tests of the programs above: "
                f"{b_wall:.0f} ms wall [{b_cpu:.0f} ms CPU] a test; a first-test failure costs {b_wall / fail_wall:.0f}x "
                f"[{b_cpu / fail_cpu:.0f}x CPU] what it costs here"
            )

            print(f"\n3. TACO-shaped run: {count} problems x n={args.n}")
            cpu = _cpu_ms(pool)
            first_samples = [s for s in samples if s.task_id in spread]
            _, first = evaluate_samples(
                problems,
                first_samples,
                config,
                pool=pool,
                progress=_progress(f"every {stride}th problem", len(first_samples)),
            )
            first_cpu = _cpu_ms(pool) - cpu
            before = dict(pool.transfer.__dict__)
            rss_before = _vm_kb("VmRSS") / 1024
            reset = _reset_peak_rss()
            cpu = _cpu_ms(pool)
            results, stats = evaluate_samples(
                problems, samples, config, pool=pool, progress=_progress("all", len(samples))
            )
            cpu = _cpu_ms(pool) - cpu
            dispatcher_peak = _vm_kb("VmHWM") / 1024
            moved = {k: v - before[k] for k, v in pool.transfer.__dict__.items()}
            print(
                f"   {stats.programs} unique programs of {len(samples)} samples, {stats.tests_run} tests, wall "
                f"{stats.wall_s:.1f} s, CPU {cpu / 1000:.1f} s: "
                f"{stats.programs / stats.wall_s:.1f} programs/s, {stats.tests_run / stats.wall_s:.0f} tests/s"
            )
            print("   verdicts: " + ", ".join(f"{k} {v}" for k, v in Counter(r.status for r in results).most_common()))
            print(
                f"   a fresh python per test would take {stats.tests_run * b_wall / 1000:.0f} s serial "
                f"({stats.tests_run * b_wall / 1000 / stats.wall_s:.0f}x this "
                f"run's wall) and {stats.tests_run * b_cpu / 1000:.0f} s CPU ({stats.tests_run * b_cpu / cpu:.0f}x this run's CPU)"
            )
            shipped = sum(sizes[task] for task, _ in {(r.task_id, r.code_sha256) for r in results})
            print(
                f"   test data to workers: {_mb(moved['test_bytes_shared'])} in {moved['test_sets_shared']} test sets "
                f"({moved['test_sets_built']} built for {count} problems); all messages to workers "
                f"{_mb(moved['message_bytes'])}; tests shipped with every program would be {_mb(shipped)}"
            )
            print(
                f"   peak RSS: dispatcher {dispatcher_peak:.0f} MB ({rss_before:.0f} MB before the run"
                f"{'' if reset else ', peak not resettable here: since start'}; inputs {_mb(sum(sizes))}, largest "
                f"problem {_mb(max(sizes))}), workers {pool.peak_worker_rss_kb / 1024:.0f} MB; test sets held by the "
                f"dispatcher at most {_mb(pool.transfer.test_bytes_held_peak)} (memfds)"
            )
            print(
                f"\n4. growth, every {stride}th problem ({growth_count}) -> all {count} (x{count / growth_count:.0f}): tests "
                f"x{stats.tests_run / first.tests_run:.1f}, wall x{stats.wall_s / first.wall_s:.1f}, CPU "
                f"x{cpu / first_cpu:.1f}; per test {first.wall_s * 1e6 / first.tests_run:.0f} -> "
                f"{stats.wall_s * 1e6 / stats.tests_run:.0f} us wall, {first_cpu * 1000 / first.tests_run:.0f} -> "
                f"{cpu * 1000 / stats.tests_run:.0f} us CPU (equal: linear)"
            )


if __name__ == "__main__":
    main()
