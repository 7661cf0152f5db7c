"""Regression alerts: compare a finished run with the previous run of the same deployment and, when
pass@1 dropped by more than a threshold, emit the Prefect event `taco-eval.regression` carrying the
numbers, so an automation can notify someone (README: "Reports, history and regression alerts").

This module is the pure check (`check_regression`, with its bootstrap noise estimate); the flow's
side of it, indexing the run and emitting the event, is `flows.finish.record_run` and
`flows.events.emit_regression_event`.
"""

from __future__ import annotations

from typing import Any

from tasks import defaults


REGRESSION_EVENT = "taco-eval.regression"


def _pass_values(obj: dict[str, Any]) -> dict[str, float]:
    """pass@k values of an index entry (`pass_at_k`) or of metrics.json (top-level `pass@k` keys)."""
    if isinstance(obj.get("pass_at_k"), dict):
        return {k: float(v) for k, v in obj["pass_at_k"].items() if v is not None}
    return {k: float(v) for k, v in obj.items() if k.startswith("pass@") and isinstance(v, (int, float))}


def check_regression(
    current: dict[str, Any],
    previous_entry: dict[str, Any] | None,
    threshold: float = defaults.REGRESSION_THRESHOLD,
    *,
    metric: str = defaults.REGRESSION_METRIC,
    with_noise: bool = False,
) -> dict[str, Any] | None:
    """The regression event's payload if `metric` fell by more than `threshold` (absolute, e.g.
    0.02 = 2 points) from `previous_entry` to `current`, else None (also when there is no previous
    run or either lacks the metric).

    `current`: the current run's index entry (`storage.run_index.entry_for_run`; gives run ids,
    model and deployment to the payload) or its metrics.json dict. `with_noise`: add a paired
    bootstrap of pass@1 over the two run folders (`payload["noise"]`), when both can be read.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    if previous_entry is None:
        return None
    cur, prev = _pass_values(current), _pass_values(previous_entry)
    if metric not in cur or metric not in prev:
        return None
    drop = prev[metric] - cur[metric]
    if not drop > threshold:
        return None
    payload: dict[str, Any] = {
        "run_id": current.get("run_id"),
        "previous_run_id": previous_entry.get("run_id"),
        "deployment": current.get("deployment", previous_entry.get("deployment")),
        "model": current.get("model", previous_entry.get("model")),
        "previous_model": previous_entry.get("model"),
        "dataset": current.get("dataset", previous_entry.get("dataset")),
        "metric": metric,
        "current": cur[metric],
        "previous": prev[metric],
        "delta": cur[metric] - prev[metric],
        "threshold": threshold,
        "deltas": {
            k: {"current": cur[k], "previous": prev[k], "delta": cur[k] - prev[k]}
            for k in sorted(set(cur) & set(prev), key=lambda s: int(s.split("@")[1]))
        },
        "finished_at": current.get("finished_at"),
        "previous_finished_at": previous_entry.get("finished_at"),
        "run_dir": current.get("run_dir"),
        "previous_run_dir": previous_entry.get("run_dir"),
    }
    if with_noise:
        payload["noise"] = _noise(current.get("run_dir"), previous_entry.get("run_dir"))
    return payload


def _noise(run_dir: str | None, previous_dir: str | None) -> dict[str, Any] | None:
    """Paired bootstrap of pass@1 between the two run folders, or None if either is unreadable."""
    if not run_dir or not previous_dir:
        return None
    from tasks.reporting.compare import compare_runs
    from tasks.reporting.rundata import RunFolderError, load_run

    try:
        cmp = compare_runs(
            load_run(run_dir, load_manifest_dataset=False), load_run(previous_dir, load_manifest_dataset=False)
        )
    except (RunFolderError, OSError):
        return None
    pb = cmp["paired_bootstrap"]
    if pb is None:
        return None
    return {
        **{k: pb[k] for k in ("delta", "low", "high", "p_value", "significant", "confidence", "problems")},
        "newly_failing": len(cmp["newly_failing"]),
        "newly_solved": len(cmp["newly_solved"]),
    }
