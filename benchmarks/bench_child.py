"""CPU cost of one test in the fork-per-test runner, against a bare fork in the same worker.

What a test costs beyond `fork` + `exit` + `wait` is the engine's own work: building the program's
`__main__` module and stdio before the fork, confining the child (rlimits, the isolation level's
layers), the interpreter-faithful start and shutdown in the child (docs/execution.md), the report
channel and the work dir check. Wall time on a shared 2-core machine swings by a millisecond;
CPU time (the worker's plus its reaped children's, `getrusage`) does not, so this is the number to
compare across commits.

In one spawned worker, set up as the pool sets one up (header preloaded, subreaper, the level's
confinement), it times `--tests` runs of an empty stdin program and `--tests` bare forks of that
worker, interleaved in `--rounds` rounds, and prints per-test CPU and wall time (minimum over the
rounds) and the ratio of the engine's CPU to the bare fork's.

    python benchmarks/bench_child.py [--tests 300] [--rounds 3] [--isolation process|seccomp]

(`bwrap` workers live inside their sandbox; their child is the same code as at `seccomp`.)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _cpu_s() -> float:
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime


def _measure(run_one, tests: int) -> tuple[float, float]:
    cpu, wall = _cpu_s(), time.perf_counter()
    for _ in range(tests):
        run_one()
    return (_cpu_s() - cpu) * 1000 / tests, (time.perf_counter() - wall) * 1000 / tests


def _worker(queue, level: str, tests: int, rounds: int) -> None:
    import tempfile

    from tasks.execution import header, runner, sandbox
    from tasks.execution.limits import Limits

    namespace = header.preload()
    runner.become_subreaper()
    base = tempfile.mkdtemp(prefix="taco-eval-bench-")
    os.chmod(base, 0o711)
    test_runner = runner.TestRunner(base, Limits(), 1 << 40, sandbox.prepare(level, 0, base))
    program = compile("pass", "<program>", "exec")

    def engine_test() -> None:
        test_runner.run(program, namespace, None, "")

    def bare_fork() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)

    for _ in range(20):  # warm up: first forks fault in the worker's pages
        engine_test()
        bare_fork()
    engine, bare = [], []
    for _ in range(rounds):
        engine.append(_measure(engine_test, tests))
        bare.append(_measure(bare_fork, tests))
    test_runner.close()
    queue.put((min(engine), min(bare)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tests", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--isolation", default="process", choices=("process", "seccomp"))
    args = ap.parse_args()
    import multiprocess

    ctx = multiprocess.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(queue, args.isolation, args.tests, args.rounds))
    proc.start()
    (engine_cpu, engine_wall), (bare_cpu, bare_wall) = queue.get()
    proc.join()
    print(f"isolation {args.isolation}, {args.tests} tests x {args.rounds} rounds (minimum), empty stdin program")
    print(f"bare fork+exit+wait : cpu {bare_cpu:.3f} ms, wall {bare_wall:.3f} ms per test")
    print(f"engine test         : cpu {engine_cpu:.3f} ms, wall {engine_wall:.3f} ms per test")
    print(
        f"engine / bare fork  : {engine_cpu / bare_cpu:.2f}x cpu; engine's own work {engine_cpu - bare_cpu:.3f} ms cpu"
    )


if __name__ == "__main__":
    main()
