"""Every tunable of taco-eval in one place.

Values that change verdicts are part of `JudgeConfig` (and so of cache keys); the rest only change
speed or presentation.
"""

from __future__ import annotations

import os
from pathlib import Path

# Bumped whenever a change alters verdicts or generations for the same inputs: part of every cache key.
CODE_VERSION = "taco-eval/4"

# --- execution -----------------------------------------------------------------------------------
DEFAULT_TIMEOUT_S = 4.0  # per test, TACO's value
# A program's whole run (all its tests) may use at most this many per-test timeouts, so a program
# whose tests each time out just under the limit cannot hold a worker for hours.
PROGRAM_BUDGET_TIMEOUTS = 12
DEFAULT_MEMORY_LIMIT_MB = 2048  # address space above the interpreter's own
DEFAULT_OUTPUT_LIMIT_BYTES = 64 * 1024 * 1024  # stdout/stderr/file size cap per test
DEFAULT_MAX_OPEN_FILES = 64
DEFAULT_MAX_PROCESSES = 64  # per test, threads count too: a pids cgroup, else RLIMIT_NPROC for an unprivileged uid
STDERR_TAIL_BYTES = 2048
# Programs longer than this are compiled in a forked child under the test limits (compiling a
# pathological 2 MB program takes seconds and ~800 MiB); shorter ones compile in the worker.
INLINE_COMPILE_MAX_CHARS = 16 * 1024
DETAIL_MAX_CHARS = 400
# Unprivileged uids for test children when the evaluator runs as root: one per worker so that
# a per-uid process limit and a kill of everything the uid owns touch only that worker's programs.
SANDBOX_UID_BASE = 61000
WORKER_RESPAWN_LIMIT = 2
WORKER_START_FAILURES = 4  # consecutive deaths before `ready`: give up with an error  # a program that kills its worker this many times gets sandbox_violation

# --- judging -------------------------------------------------------------------------------------
# Decimal expected tokens match within FLOAT_TOLERANCE · max(1, |expected|) unless the statement
# states its own tolerance; also TACO's special judge case 3, which keeps it when a run asks for 0.
FLOAT_TOLERANCE = 1e-6
CALL_FLOAT_REL_TOL = 1e-9

# --- metrics -------------------------------------------------------------------------------------
DEFAULT_KS = (1, 10, 100)

# --- storage -------------------------------------------------------------------------------------
CACHE_DIR = Path(os.environ.get("TACO_EVAL_CACHE_DIR", Path.home() / ".cache" / "taco-eval"))
# Verdicts reused across runs, keyed by (problem content, code, judge config).
VERDICT_CACHE = Path(os.environ.get("TACO_EVAL_VERDICT_CACHE", CACHE_DIR / "verdicts.sqlite"))
