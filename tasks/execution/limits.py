"""Resource limits of one test run, and their application inside the test child."""

from __future__ import annotations

import math
import resource
from dataclasses import dataclass

from tasks import defaults


@dataclass(frozen=True)
class Limits:
    timeout_s: float = defaults.DEFAULT_TIMEOUT_S
    memory_limit_mb: int = defaults.DEFAULT_MEMORY_LIMIT_MB
    output_limit_bytes: int = defaults.DEFAULT_OUTPUT_LIMIT_BYTES
    max_open_files: int = defaults.DEFAULT_MAX_OPEN_FILES
    max_processes: int = defaults.DEFAULT_MAX_PROCESSES


def _set(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def apply_rlimits(limits: Limits, address_space_base: int, enforce_nproc: bool) -> None:
    """Called in the test child."""
    apply_compile_rlimits(limits, address_space_base)
    _set(resource.RLIMIT_FSIZE, limits.output_limit_bytes)
    _set(resource.RLIMIT_NOFILE, limits.max_open_files)
    if enforce_nproc:
        _set(resource.RLIMIT_NPROC, limits.max_processes)


def apply_compile_rlimits(limits: Limits, address_space_base: int) -> None:
    """The memory and CPU a test may use (also what compiling a big program may use). Address
    space is counted above what the interpreter already maps."""
    _set(resource.RLIMIT_AS, address_space_base + limits.memory_limit_mb * 1024 * 1024)
    # CPU time backs up the parent's wall-clock deadline (a child the parent somehow misses).
    _set(resource.RLIMIT_CPU, math.ceil(limits.timeout_s) + 1)
    _set(resource.RLIMIT_CORE, 0)
