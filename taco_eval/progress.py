"""Progress bars for long work, on stderr."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from tqdm import tqdm


class EvaluationProgress:
    """Programs judged, with programs/s and tests/s."""

    def __init__(self, samples: int, desc: str | None = None):
        self.samples = samples
        self.desc = desc or f"judging {samples} samples"
        self.bar: Any = None

    def __enter__(self) -> "EvaluationProgress":
        return self

    def _open(self, total: int, initial: int) -> None:
        self.bar = tqdm(
            total=total,
            initial=initial,
            unit="prog",
            desc=self.desc,
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.5,
        )

    def update(self, stats: Any, tests_in_step: int) -> None:
        if self.bar is None:
            self._open(stats.programs, stats.programs_cached)
            return
        self.bar.update(1)
        self.bar.set_postfix_str(f"{stats.tests_per_s:.0f} tests/s", refresh=False)

    def advance(self, stats: Any, programs: int) -> None:
        """`programs` more judged at once (a part judged on a cluster); the first call, with
        `stats.programs` the total, only opens the bar."""
        if self.bar is None:
            self._open(stats.programs, 0)
            return
        self.bar.update(programs)
        self.bar.set_postfix_str(f"{stats.tests_per_s:.0f} tests/s", refresh=False)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()


class GenerationProgress:
    """A tqdm bar over samples with tokens/s, safe to update from several lanes."""

    def __init__(self, total: int, enabled: bool = True):
        self.lock = threading.Lock()
        self.tokens = 0
        self.start = time.perf_counter()
        self.bar = None
        if enabled and total > 0:
            self.bar = tqdm(total=total, unit="sample", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def __call__(self, samples: int, tokens: int) -> None:
        with self.lock:
            self.tokens += tokens
            if self.bar is not None:
                elapsed = max(1e-9, time.perf_counter() - self.start)
                self.bar.set_postfix_str(f"{self.tokens / elapsed:.1f} tok/s", refresh=False)
                self.bar.update(samples)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
