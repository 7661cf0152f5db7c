"""Progress bars for long work, on stderr."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


class EvaluationProgress:
    """Programs judged, with programs/s and tests/s."""

    def __init__(self, samples: int):
        self.samples = samples
        self.bar: Any = None

    def __enter__(self) -> "EvaluationProgress":
        return self

    def update(self, stats: Any, tests_in_step: int) -> None:
        if self.bar is None:
            self.bar = tqdm(
                total=stats.programs,
                initial=stats.programs_cached,
                unit="prog",
                desc=f"judging {self.samples} samples",
                file=sys.stderr,
                dynamic_ncols=True,
                mininterval=0.5,
            )
            return
        self.bar.update(1)
        self.bar.set_postfix_str(f"{stats.tests_per_s:.0f} tests/s", refresh=False)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()
