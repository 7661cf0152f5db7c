"""Progress on stderr for every long command: one display of the stages' `ProgressEvent`s
(tasks/progress.py), for `generate`, `evaluate` and `run` alike.

On a terminal each stage gets a tqdm bar; in `taco-eval run` generation of shard k+1 overlaps
execution of shard k, so both bars can be live, fed from two Prefect task threads. Log records
(Prefect's) are written above the bars instead of through them. Anywhere else (CI logs, files) a
stage writes a plain line when it starts, at most one every `PROGRESS_LINE_INTERVAL_S` while it
runs, and one with its final counts at the end: no carriage returns.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from tasks import defaults
from tasks.progress import UNITS, ProgressEvent


@dataclass
class _Stage:
    name: str
    done: int = 0
    work: int = 0
    expected: int = 0
    # Seconds the stage was busy: the union of the reporters' intervals [arrival - seconds, arrival],
    # so two lanes at once count once and the wait between shards (execution waiting for the next
    # generation) not at all.
    busy_s: float = 0.0
    busy_until: float = float("-inf")
    last_line_at: float | None = None
    last_line: str = ""
    bar: Any = None

    def add(self, event: ProgressEvent, now: float) -> None:
        self.done += event.done
        self.work += event.work
        self.expected += event.expected
        if event.seconds >= 0:
            self.busy_s += max(0.0, now - max(now - event.seconds, self.busy_until))
            self.busy_until = max(self.busy_until, now)
        else:  # a failed shard's report taken back
            self.busy_s = max(0.0, self.busy_s + event.seconds)

    def rate(self) -> float | None:
        return self.work / self.busy_s if self.busy_s > 0 and self.work > 0 else None

    def rate_text(self) -> str:
        rate = self.rate()
        return "" if rate is None else f"{rate:,.1f} {UNITS[self.name][1]}/s"

    def line(self) -> str:
        unit, work_unit = UNITS[self.name]
        count = f"{self.done}/{self.expected} {unit}" if self.expected else f"{self.done} {unit}"
        if self.expected:
            count += f" ({100 * self.done / self.expected:.0f}%)"
        return ", ".join(p for p in (f"{self.name}: {count}", f"{self.work} {work_unit}", self.rate_text()) if p)


class ProgressDisplay:
    """A `ProgressSink` that draws on `stream` (stderr); safe to call from several threads.
    Use as a context manager (or call `close()`): the end prints the final counts."""

    def __init__(
        self,
        enabled: bool = True,
        stream: TextIO | None = None,
        line_interval_s: float = defaults.PROGRESS_LINE_INTERVAL_S,
    ):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.on_terminal = enabled and _is_terminal(self.stream)
        self.line_interval_s = line_interval_s
        self.stages: dict[str, _Stage] = {}
        self.lock = threading.Lock()
        self.exit_stack = contextlib.ExitStack()

    def __enter__(self) -> "ProgressDisplay":
        if self.on_terminal:
            self.exit_stack.enter_context(logging_redirect_tqdm())
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __call__(self, event: ProgressEvent) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        with self.lock:
            stage = self.stages.get(event.stage)
            if stage is None:
                stage = self.stages[event.stage] = _Stage(event.stage)
            stage.add(event, now)
            if self.on_terminal:
                self._draw(stage)
            elif stage.last_line_at is None or (
                now - stage.last_line_at >= self.line_interval_s and stage.line() != stage.last_line
            ):
                self._write_line(stage, now)

    def close(self) -> None:
        with self.lock:
            for stage in self.stages.values():
                if stage.bar is not None:
                    stage.bar.n = stage.done
                    stage.bar.refresh()
                    stage.bar.close()
                    stage.bar = None
                elif not self.on_terminal and stage.line() != stage.last_line:
                    self._write_line(stage, time.monotonic())
            self.exit_stack.close()

    def _draw(self, stage: _Stage) -> None:
        if stage.bar is None:
            stage.bar = tqdm(
                total=stage.expected or None,
                desc=stage.name,
                unit=" " + UNITS[stage.name][0],
                file=self.stream,
                dynamic_ncols=True,
                mininterval=0.5,
                smoothing=0.1,
            )
        bar = stage.bar
        bar.total = stage.expected or None
        bar.set_postfix_str(stage.rate_text(), refresh=False)
        bar.update(stage.done - bar.n)  # redraws at most every mininterval

    def _write_line(self, stage: _Stage, now: float) -> None:
        stage.last_line, stage.last_line_at = stage.line(), now
        self.stream.write(stage.last_line + "\n")
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
