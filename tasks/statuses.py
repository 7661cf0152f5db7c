"""Verdict statuses and TACO's per-test result codes."""

from __future__ import annotations

PASSED = "passed"
WRONG_ANSWER = "wrong_answer"
TIMEOUT = "timeout"
RUNTIME_ERROR = "runtime_error"
COMPILE_ERROR = "compile_error"
MEMORY_LIMIT = "memory_limit"
OUTPUT_LIMIT = "output_limit"
SANDBOX_VIOLATION = "sandbox_violation"
SKIPPED = "skipped"

ALL = (
    PASSED,
    WRONG_ANSWER,
    TIMEOUT,
    RUNTIME_ERROR,
    COMPILE_ERROR,
    MEMORY_LIMIT,
    OUTPUT_LIMIT,
    SANDBOX_VIOLATION,
    SKIPPED,
)

# TACO's per-test codes (compute_metric.py): 1 pass, 0 wrong answer, -1 timeout, -2 compile error,
# -3 runtime error. Our finer statuses map onto the closest code.
TACO_CODE = {
    PASSED: 1,
    WRONG_ANSWER: 0,
    TIMEOUT: -1,
    COMPILE_ERROR: -2,
    RUNTIME_ERROR: -3,
    MEMORY_LIMIT: -3,
    OUTPUT_LIMIT: -3,
    SANDBOX_VIOLATION: -3,
}

# When tests disagree, a program's status is the first failing test's status.

# A problem's status in a dataset check (`taco-eval check-dataset`): what its own reference
# solutions do on its own tests, under the same engine and judge as generated programs.
VERIFIED = "verified"  # every solution run passes every test
PARTIAL = "partial"  # some pass
BROKEN = "broken"  # none passes
NO_SOLUTIONS = "no_solutions"  # the row has no reference solution to run
# SKIPPED (above): a malformed row
CHECK_STATUSES = (VERIFIED, PARTIAL, BROKEN, NO_SOLUTIONS, SKIPPED)
# Problems that at least one reference solves: a verified subset's metrics are computed over these.
USABLE = (VERIFIED, PARTIAL)
