"""pass@k (the unbiased estimator of Chen et al. 2021) overall, by difficulty and by skill."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from storage.atomic import write_json
from storage.rundir import RunDir

from tasks import statuses
from tasks.dataset_check.subset import VerifiedSelection
from tasks.types import JUDGE_NONDETERMINISTIC, MalformedRow, Problem, ProgramResult


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) passes."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    # 1 - C(n-c, k) / C(n, k), as a product to stay exact-ish for large n.
    prob_all_fail = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_fail *= 1.0 - k / i
    return 1.0 - prob_all_fail


def per_task_counts(results: Iterable[ProgramResult]) -> dict[int, tuple[int, int]]:
    """task_id → (samples, passed), excluding skipped samples."""
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        if r.status == statuses.SKIPPED:
            continue
        counts[r.task_id][0] += 1
        counts[r.task_id][1] += int(r.passed)
    return {t: (n, c) for t, (n, c) in counts.items()}


def _group(counts: dict[int, tuple[int, int]], ks: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {"num_problems": len(counts), "num_samples": sum(n for n, _ in counts.values())}
    for k in ks:
        if counts and all(n >= k for n, _ in counts.values()):
            out[f"pass@{k}"] = sum(pass_at_k(n, c, k) for n, c in counts.values()) / len(counts)
    return out


def usable_ks(counts: dict[int, tuple[int, int]], ks: Sequence[int]) -> list[int]:
    """k values reported: only k ≤ n for every scored problem."""
    return [k for k in ks if counts and all(n >= k for n, _ in counts.values())]


def verified_block(
    selection: VerifiedSelection, scored: dict[int, tuple[int, int]], by_id: dict[int, Problem], ks: Sequence[int]
) -> dict[str, Any]:
    """metrics.json's `verified`: pass@k over the scored problems a dataset check finds usable,
    by difficulty, and the problems it leaves out, by reason."""
    usable = {t: nc for t, nc in scored.items() if t in selection.usable}
    ks_used = usable_ks(usable, ks)
    by_difficulty: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
    for t, nc in usable.items():
        by_difficulty[by_id[t].difficulty][t] = nc
    return {
        **_group(usable, ks_used),
        "ks": ks_used,
        "by_difficulty": {d: _group(g, ks_used) for d, g in sorted(by_difficulty.items())},
        "excluded_task_ids": selection.excluded,
        "dataset_check": selection.describe(),
    }


def compute_metrics(
    problems: Sequence[Problem],
    malformed: Sequence[MalformedRow],
    results: Sequence[ProgramResult],
    ks: Sequence[int],
    verified: VerifiedSelection | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics.json, taco_metrics.json) contents. `verified`: add the `verified` block (TACO's
    file still covers every scored problem)."""
    counts = per_task_counts(results)
    by_id = {p.task_id: p for p in problems}
    scored = {t: nc for t, nc in counts.items() if t in by_id}
    ks_used = usable_ks(scored, ks)

    by_difficulty: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
    by_skill: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
    for t, nc in scored.items():
        p = by_id[t]
        by_difficulty[p.difficulty][t] = nc
        for skill in p.skills or ("(none)",):
            by_skill[skill][t] = nc
    nondeterministic = sorted(t for t in scored if by_id[t].judge == JUDGE_NONDETERMINISTIC)
    deterministic = {t: nc for t, nc in scored.items() if t not in set(nondeterministic)}

    status_counts = Counter(r.status for r in results)
    metrics = {
        **_group(scored, ks_used),
        "ks": ks_used,
        "ks_requested": list(ks),
        "by_difficulty": {d: _group(g, ks_used) for d, g in sorted(by_difficulty.items())},
        "by_skill": {s: _group(g, ks_used) for s, g in sorted(by_skill.items())},
        "nondeterministic_output": {
            "task_ids": nondeterministic,
            "note": "no checker exists for these (TACO special judge case 1); judged with the default rule",
            "metrics_without_them": _group(deterministic, ks_used),
        },
        "statuses": {s: status_counts.get(s, 0) for s in statuses.ALL},
        "problems_loaded": len(problems),
        "problems_without_samples": sorted(set(by_id) - set(scored)),
        "skipped_problems": [{"task_id": m.index, "problem_id": m.problem_id, "reason": m.reason} for m in malformed],
        "unknown_task_ids": sorted({r.task_id for r in results} - set(by_id) - {m.index for m in malformed}),
    }
    if verified is not None:
        metrics["verified"] = verified_block(verified, scored, by_id, ks)
    taco: dict[str, Any] = {f"pass@{k}": metrics[f"pass@{k}"] for k in ks_used}
    taco["detail"] = {
        f"pass@{k}": {str(t): pass_at_k(n, c, k) for t, (n, c) in sorted(scored.items())} for k in ks_used
    }
    return metrics, taco


def write_metrics(
    out_dir: Path,
    problems: Sequence[Problem],
    malformed: Sequence[MalformedRow],
    results: Sequence[ProgramResult],
    ks: Sequence[int],
    verified: VerifiedSelection | None = None,
) -> dict[str, Any]:
    """Write `metrics.json` and `taco_metrics.json` into `out_dir`; return the metrics."""
    metrics, taco = compute_metrics(problems, malformed, results, ks, verified)
    folder = RunDir(out_dir)
    write_json(folder.metrics, metrics)
    write_json(folder.taco_metrics, taco)
    return metrics
