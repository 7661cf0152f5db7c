"""Bootstrap confidence intervals over problems (percentile method).

A benchmark score is a mean over problems of a per-problem value (the unbiased pass@k estimate of
each problem); its uncertainty comes mostly from which problems happen to be in the set, so we
resample problems with replacement. Two runs on the same problems are compared with a *paired*
bootstrap: resample problems, and take the mean of the per-problem differences, which cancels the
shared difficulty of each problem and is far tighter than two independent intervals.

Intervals are deterministic for a given seed, so a report re-rendered from the same run folder
shows the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from tasks.metrics import pass_at_k

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 20240601
_MAX_CELLS = 4_000_000  # resample in chunks of at most this many index cells (~32 MB)


@dataclass(frozen=True)
class Interval:
    estimate: float  # the plain mean over problems
    low: float
    high: float
    confidence: float
    resamples: int
    problems: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PairedDelta:
    """Mean per-problem difference (current − baseline) with its paired-bootstrap interval."""

    delta: float
    low: float
    high: float
    p_value: float  # two-sided bootstrap p-value for "no change"
    significant: bool  # the interval excludes 0
    confidence: float
    resamples: int
    problems: int
    current: float
    baseline: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def per_problem_pass_at_k(
    counts: Mapping[int, tuple[int, int]], k: int, task_ids: Sequence[int] | None = None
) -> np.ndarray:
    """Unbiased pass@k of each problem (ordered by `task_ids`, default sorted) from (n, c) counts."""
    ids = sorted(counts) if task_ids is None else list(task_ids)
    return np.array([pass_at_k(counts[t][0], counts[t][1], k) for t in ids], dtype=float)


def _resampled_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = len(values)
    chunk = max(1, _MAX_CELLS // max(1, n))
    out = np.empty(resamples, dtype=float)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def _check(resamples: int, confidence: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Interval | None:
    """Percentile bootstrap interval of the mean of `values` (one value per problem); None if empty."""
    _check(resamples, confidence)
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return None
    means = _resampled_means(arr, resamples, np.random.default_rng(seed))
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    est = float(arr.mean())
    # Float noise in the resampled means must not put the estimate outside its own interval.
    return Interval(est, float(min(low, est)), float(max(high, est)), confidence, resamples, int(arr.size))


def paired_bootstrap(
    current: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> PairedDelta | None:
    """Paired bootstrap of mean(current − baseline) over the same problems, in the same order."""
    _check(resamples, confidence)
    cur, base = np.asarray(current, dtype=float), np.asarray(baseline, dtype=float)
    if cur.shape != base.shape:
        raise ValueError(f"paired values differ in length: {cur.shape} vs {base.shape}")
    if cur.size == 0:
        return None
    diff = cur - base
    means = _resampled_means(diff, resamples, np.random.default_rng(seed))
    alpha = 1.0 - confidence
    low, high = (float(v) for v in np.quantile(means, [alpha / 2, 1 - alpha / 2]))
    delta = float(diff.mean())
    low, high = min(low, delta), max(high, delta)
    if not diff.any():
        p_value = 1.0
    else:
        # Two-sided: how often a resample lands on the far side of zero from the observed change.
        below, above = float(np.mean(means <= 0)), float(np.mean(means >= 0))
        p_value = min(1.0, 2 * min(below, above))
    significant = low > 0 or high < 0
    return PairedDelta(
        delta,
        low,
        high,
        p_value,
        significant,
        confidence,
        resamples,
        int(diff.size),
        float(cur.mean()),
        float(base.mean()),
    )
