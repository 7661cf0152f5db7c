"""Isolation levels: what confines a test child beyond its rlimits and process group.

`process` (rlimits, own session, temp dir, stray-process reaping) is always available.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

PROCESS = "process"
LEVELS = (PROCESS,)
AUTO = "auto"


class IsolationUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Confinement:
    level: str
    confine: Callable[[], None]  # runs in the test child, after rlimits
    enforce_nproc: bool


def _nothing() -> None:
    return None


def available_levels() -> list[str]:
    return [PROCESS]


def resolve(level: str) -> str:
    """The concrete level for a requested one (`auto` → the strongest available)."""
    if level == AUTO:
        return available_levels()[-1]
    if level not in LEVELS:
        raise IsolationUnavailable(f"unknown isolation level '{level}' (choose auto, {', '.join(LEVELS)})")
    if level not in available_levels():
        raise IsolationUnavailable(f"isolation level '{level}' is not available on this machine")
    return level


def prepare(level: str, worker_index: int) -> Confinement:
    """Called once per worker process."""
    return Confinement(level=PROCESS, confine=_nothing, enforce_nproc=False)
