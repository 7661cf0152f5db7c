"""Compare two scored runs: pass@k deltas overall and per difficulty, problems newly solved or newly
failing, and a paired bootstrap that says whether the change in pass@1 is larger than noise.

Deltas are `current − baseline`, computed on the problems both runs scored (listed when the sets
differ). Per-difficulty deltas use per-problem metadata when either run has it, else the two runs'
metrics.json aggregates.
"""

from __future__ import annotations

from typing import Any

from tasks.reporting.bootstrap import CONFIDENCE, RESAMPLES, SEED, paired_bootstrap, per_problem_pass_at_k
from tasks.metrics import pass_at_k
from tasks.reporting.rundata import RunData

DIFFICULTY_ORDER = ("EASY", "MEDIUM", "MEDIUM_HARD", "HARD", "VERY_HARD", "UNKNOWN")


def difficulty_key(name: str) -> tuple[int, str]:
    return (DIFFICULTY_ORDER.index(name) if name in DIFFICULTY_ORDER else len(DIFFICULTY_ORDER), name)


def _mean_pass(counts: dict[int, tuple[int, int]], ids: list[int], k: int) -> float | None:
    if not ids or any(counts[t][0] < k for t in ids):
        return None
    return sum(pass_at_k(*counts[t], k) for t in ids) / len(ids)


def _delta_row(
    group: str, problems: int, cur: dict[int, float | None], base: dict[int, float | None], ks: list[int]
) -> dict[str, Any]:
    row: dict[str, Any] = {"group": group, "problems": problems}
    for k in ks:
        c, b = cur.get(k), base.get(k)
        row[f"pass@{k}"] = {"current": c, "baseline": b, "delta": (c - b) if c is not None and b is not None else None}
    return row


def compare_runs(
    current: RunData, baseline: RunData, *, resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = SEED
) -> dict[str, Any]:
    """Everything the report's comparison section shows, as plain data (JSON-serialisable)."""
    cur_counts, base_counts = current.counts(), baseline.counts()
    common = sorted(set(cur_counts) & set(base_counts))
    ks = [
        k
        for k in current.ks
        if k in baseline.ks and all(cur_counts[t][0] >= k and base_counts[t][0] >= k for t in common)
    ]

    overall = _delta_row(
        "overall",
        len(common),
        {k: _mean_pass(cur_counts, common, k) for k in ks},
        {k: _mean_pass(base_counts, common, k) for k in ks},
        ks,
    )

    infos = current.problems or baseline.problems
    by_difficulty: list[dict[str, Any]] = []
    if infos is not None:
        groups: dict[str, list[int]] = {}
        for t in common:
            groups.setdefault(infos[t].difficulty if t in infos else "UNKNOWN", []).append(t)
        for name in sorted(groups, key=difficulty_key):
            ids = groups[name]
            by_difficulty.append(
                _delta_row(
                    name,
                    len(ids),
                    {k: _mean_pass(cur_counts, ids, k) for k in ks},
                    {k: _mean_pass(base_counts, ids, k) for k in ks},
                    ks,
                )
            )
        difficulty_source = "per-problem metadata, common problems"
    else:
        cur_g, base_g = current.metrics.get("by_difficulty", {}), baseline.metrics.get("by_difficulty", {})
        for name in sorted(set(cur_g) | set(base_g), key=difficulty_key):
            c, b = cur_g.get(name, {}), base_g.get(name, {})
            by_difficulty.append(
                _delta_row(
                    name,
                    max(c.get("num_problems", 0), b.get("num_problems", 0)),
                    {k: c.get(f"pass@{k}") for k in ks},
                    {k: b.get(f"pass@{k}") for k in ks},
                    ks,
                )
            )
        difficulty_source = "metrics.json aggregates of each run"

    solved_now = {t for t in common if cur_counts[t][1] > 0}
    solved_before = {t for t in common if base_counts[t][1] > 0}
    paired = None
    if 1 in ks and common:
        result = paired_bootstrap(
            per_problem_pass_at_k(cur_counts, 1, common),
            per_problem_pass_at_k(base_counts, 1, common),
            resamples=resamples,
            confidence=confidence,
            seed=seed,
        )
        paired = {"metric": "pass@1", **result.as_dict()} if result else None
    return {
        "current_run_id": current.run_id,
        "baseline_run_id": baseline.run_id,
        "current_model": current.model,
        "baseline_model": baseline.model,
        "current_dir": str(current.root),
        "baseline_dir": str(baseline.root),
        "ks": ks,
        "common_problems": len(common),
        "only_in_current": sorted(set(cur_counts) - set(base_counts)),
        "only_in_baseline": sorted(set(base_counts) - set(cur_counts)),
        "overall": overall,
        "by_difficulty": by_difficulty,
        "difficulty_source": difficulty_source,
        # A problem is "solved" when at least one of its samples passed.
        "newly_solved": sorted(solved_now - solved_before),
        "newly_failing": sorted(solved_before - solved_now),
        "paired_bootstrap": paired,
        "same_dataset": _fingerprint(current) == _fingerprint(baseline),
    }


def _fingerprint(run: RunData) -> str | None:
    return ((run.manifest or {}).get("dataset") or {}).get("fingerprint")
