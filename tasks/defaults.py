"""Every default and tunable of taco-eval in one place: the CLI, the flow and the stages read them here.

Values that change verdicts are part of `JudgeConfig` (and so of cache keys); the rest only change
speed or presentation. This module is part of the shared vocabulary: it imports nothing of the
project, and the bwrap sandbox binds it (tasks.execution.bwrap.WORKER_MODULES).
"""

from __future__ import annotations

import os
from pathlib import Path

# Bumped whenever a change alters verdicts or generations for the same inputs: part of every cache key.
CODE_VERSION = "taco-eval/4"

# --- execution -----------------------------------------------------------------------------------
DEFAULT_TIMEOUT_S = 4.0  # per test, TACO's value
# The dispatcher's deadline for one program's whole run: BASE + timeout · FACTOR · (tests + 1)
# seconds. Per-test deadlines bound a run already; this only catches a worker that stops answering
# (a pathological compile, a bug), so it is generous.
PROGRAM_BUDGET_BASE_S = 30.0
PROGRAM_BUDGET_TIMEOUT_FACTOR = 1.5
DEFAULT_MEMORY_LIMIT_MB = 2048  # address space above the interpreter's own
DEFAULT_OUTPUT_LIMIT_BYTES = 64 * 1024 * 1024  # stdout/stderr/file size cap per test
DEFAULT_MAX_OPEN_FILES = 64
DEFAULT_MAX_PROCESSES = 64  # per test, threads count too: a pids cgroup, else RLIMIT_NPROC for an unprivileged uid
STDERR_TAIL_BYTES = 2048  # of a test's stderr, kept for the verdict's detail
# Programs longer than this are compiled in a forked child under the test limits (compiling a
# pathological 2 MB program takes seconds and ~800 MiB); shorter ones compile in the worker.
INLINE_COMPILE_MAX_CHARS = 16 * 1024
DETAIL_MAX_CHARS = 400  # a result's `detail` (stderr tail, compile error, first mismatch)
# Unprivileged uids for test children when the evaluator runs as root: one per worker so that
# a per-uid process limit and a kill of everything the uid owns touch only that worker's programs.
SANDBOX_UID_BASE = 61000
# Test data (tasks.execution.testdata): a worker keeps this many problems' test sets (memfds, not
# memory of its own); the dispatcher keeps this many beyond the ones running programs use, and
# looks this many jobs ahead in the stream to keep each problem's programs on one worker.
WORKER_TEST_SETS = 4
DISPATCHER_TEST_SETS = 8
DISPATCH_LOOKAHEAD_JOBS = 512
# A program that kills its worker this many times gets sandbox_violation.
WORKER_RESPAWN_LIMIT = 2
WORKER_START_FAILURES = 4  # consecutive deaths before `ready`: give up with an error

# --- judging -------------------------------------------------------------------------------------
# Decimal expected tokens match within FLOAT_TOLERANCE · max(1, |expected|) unless the statement
# states its own tolerance; also TACO's special judge case 3, which keeps it when a run asks for 0.
FLOAT_TOLERANCE = 1e-6
CALL_FLOAT_REL_TOL = 1e-9

# --- generation ----------------------------------------------------------------------------------
# Shared by `taco-eval generate`, `taco-eval run` and the flow.
DEFAULT_MODEL = "smollm2"  # `run` and the flow; `generate` has no default model
DEFAULT_TEMPERATURE = 0.2  # 0 → greedy decoding
DEFAULT_TOP_P = 0.95
DEFAULT_SEED = 1234
# auto: the model's chat template when its tokenizer has one, else TACO's completion prompt
# (tasks/generation/prompts.py); "taco" and "chat" force one.
DEFAULT_PROMPT_FORMAT = "auto"
# `taco-eval generate` (and `find-batch-size`'s model options): a real evaluation's sizes.
GENERATE_N = 20
GENERATE_MAX_TOKENS = 512
GENERATE_SHARD_SIZE = 8  # problems per Parquet shard of a generate folder
FIND_BATCH_SIZE_MAX_TOKENS = 64
FIND_BATCH_SIZE_MAX_BATCH = 32
# `taco-eval run` and the flow: sized to finish in minutes on a laptop CPU.
RUN_N = 2
RUN_MAX_TOKENS = 128
RUN_SHARD_SIZE = 5  # problems per shard of a run folder (part of the run id)
RUN_OUTPUT_DIR = "out"

# --- dataset check (`taco-eval check-dataset`, the `taco-eval-check` flow) ----------------------
CHECK_MAX_SOLUTIONS = 5  # reference solutions run per problem (the first ones of its `solutions`)
CHECK_OUTPUT_DIR = "out/dataset-check"  # the flow's default output folder

# --- metrics and reports -------------------------------------------------------------------------
DEFAULT_KS = (1, 10, 100)
HISTORY_KS = (1, 10)  # the trend's columns (`taco-eval history`, history.md)
# Absolute drop in pass@1 (0.02 = 2 percentage points) that emits `taco-eval.regression`.
REGRESSION_THRESHOLD = 0.02
REGRESSION_METRIC = "pass@1"

# --- progress ------------------------------------------------------------------------------------
# Where stderr is not a terminal (CI logs, files), a running stage writes one progress line at most
# this often (bars on a terminal redraw in place).
PROGRESS_LINE_INTERVAL_S = 30.0

# --- storage -------------------------------------------------------------------------------------
CACHE_DIR = Path(os.environ.get("TACO_EVAL_CACHE_DIR", Path.home() / ".cache" / "taco-eval"))
# A run's lock on object storage is a lease (storage/run_lock.py): renewed every quarter of this
# by its holder, taken over by another run when not renewed for this long.
RUN_LEASE_S = 60.0
# Verdicts reused across runs, keyed by (problem content, code, judge config). Always a local file
# (SQLite), even when runs are written to object storage: a cache, one per machine.
VERDICT_CACHE = Path(os.environ.get("TACO_EVAL_VERDICT_CACHE", CACHE_DIR / "verdicts.sqlite"))

# --- scale-out (README, "Scaling out") -----------------------------------------------------------
DASK_CONNECT_TIMEOUT_S = 30.0  # reaching a Dask scheduler
DASK_WORKER_WAIT_S = 60.0  # for the first worker of a cluster to join its scheduler
DASK_API_CHECK_TIMEOUT_S = 5.0  # a worker's request to the Prefect API's /health
# `taco-eval evaluate` on a cluster: problems go to workers in parts of at least this many samples,
# so a worker's pool has programs for every core even when each problem has only a few samples.
CLUSTER_PART_SAMPLES = 64
LANE_POLL_S = 1.0  # how often the flow looks for shards sealed by generation lanes
LANE_STATE_POLL_S = 10.0  # and asks the Prefect API whether a lane's flow run has ended
LANE_DEPLOYMENT = "taco-eval-generate/generate"  # the deployment a lane runs (prefect.yaml)
