"""Progress of the long stages, as events for whoever watches (the CLI draws bars from them).

A stage reports to a `ProgressSink`, a plain callable taking `ProgressEvent`s, so tasks/ needs nothing
of the CLI. Generation counts samples done and tokens generated, execution programs judged and tests
run. Whoever plans the work announces the units to expect (`expected`), one program per sample for
execution; `evaluate_samples` corrects that plan when identical samples share one program.

The Prefect tasks of `taco-eval run` run in threads of the CLI's own process. A sink cannot be a task
input (inputs are hashed into cache keys and recorded by the API), so the CLI installs its sink for
the process (`reporting_to`) and the task wrappers hand `current()` to the stages. A flow served
elsewhere (a deployment's worker) finds none and reports nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterator

GENERATE = "generate"
EXECUTE = "execute"
STAGES = (GENERATE, EXECUTE)
# Stage → (what `done` counts, what `work` counts).
UNITS = {GENERATE: ("samples", "tokens"), EXECUTE: ("programs", "tests")}


@dataclass(frozen=True)
class ProgressEvent:
    stage: str  # GENERATE | EXECUTE
    done: int = 0  # units finished (samples, programs)
    work: int = 0  # what finishing them took (tokens generated, tests run)
    expected: int = 0  # change to the number of units the stage expects
    seconds: float = 0.0  # time the reporter spent on them since its previous event (rates use it)


ProgressSink = Callable[[ProgressEvent], None]

_installed: ProgressSink | None = None
_installed_lock = threading.Lock()


@contextlib.contextmanager
def reporting_to(sink: ProgressSink | None) -> Iterator[None]:
    """Make `sink` this process's progress sink for the block (what `current()` returns)."""
    global _installed
    with _installed_lock:
        previous, _installed = _installed, sink
    try:
        yield
    finally:
        with _installed_lock:
            _installed = previous


def current() -> ProgressSink | None:
    with _installed_lock:
        return _installed


@contextlib.contextmanager
def retracted_on_failure(sink: ProgressSink | None) -> Iterator[ProgressSink | None]:
    """A sink that passes events on and, when the block fails, takes back what it passed, so a shard
    that fails and is retried counts once."""
    if sink is None:
        yield None
        return
    fields = ("done", "work", "expected", "seconds")
    passed: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()

    def forward(event: ProgressEvent) -> None:
        with lock:
            for name in fields:
                passed[event.stage, name] += getattr(event, name)
        sink(event)

    try:
        yield forward
    except BaseException:
        for stage in STAGES:
            taken = {name: -passed[stage, name] for name in fields}
            if any(taken.values()):
                sink(ProgressEvent(stage, **taken))
        raise
