"""Regression alerts: compare a finished run with the previous run of the same deployment and, when
pass@1 dropped by more than a threshold, emit the Prefect event `taco-eval.regression` carrying the
numbers, so an automation can notify someone (README: "Reports, history and regression alerts").

The one call the flow needs at the end of a run is `record_run(...)`; the pieces are public too:
`previous_run` (storage.run_index) → `check_regression` → `append_run` → `emit_regression_event`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from storage.run_index import append_run, entry_for_run, previous_run

REGRESSION_EVENT = "taco-eval.regression"
DEFAULT_THRESHOLD = 0.02  # absolute drop in pass@1 (0.02 = 2 percentage points)
DEFAULT_METRIC = "pass@1"


def _pass_values(obj: dict[str, Any]) -> dict[str, float]:
    """pass@k values of an index entry (`pass_at_k`) or of metrics.json (top-level `pass@k` keys)."""
    if isinstance(obj.get("pass_at_k"), dict):
        return {k: float(v) for k, v in obj["pass_at_k"].items() if v is not None}
    return {k: float(v) for k, v in obj.items() if k.startswith("pass@") and isinstance(v, (int, float))}


def check_regression(
    current: dict[str, Any],
    previous_entry: dict[str, Any] | None,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    metric: str = DEFAULT_METRIC,
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
        "deltas": {k: {"current": cur[k], "previous": prev[k], "delta": cur[k] - prev[k]}
                   for k in sorted(set(cur) & set(prev), key=lambda s: int(s.split("@")[1]))},
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
    from tasks.compare import compare_runs
    from tasks.rundata import RunFolderError, load_run

    try:
        cmp = compare_runs(load_run(run_dir, load_manifest_dataset=False),
                           load_run(previous_dir, load_manifest_dataset=False))
    except (RunFolderError, OSError):
        return None
    pb = cmp["paired_bootstrap"]
    if pb is None:
        return None
    return {**{k: pb[k] for k in ("delta", "low", "high", "p_value", "significant", "confidence", "problems")},
            "newly_failing": len(cmp["newly_failing"]), "newly_solved": len(cmp["newly_solved"])}


def emit_regression_event(payload: dict[str, Any]) -> Any:
    """Emit `taco-eval.regression` about resource `taco-eval.run.<run_id>` (labels: model, deployment,
    dataset, significant), with the previous run as a related resource (role `baseline`) and, inside a flow run,
    the flow run and deployment. Returns the prefect Event (None when events are disabled)."""
    from prefect.events import emit_event

    run_id = payload.get("run_id")
    if not run_id:
        raise ValueError("regression payload has no run_id (pass an index entry to check_regression)")
    resource = {
        "prefect.resource.id": f"taco-eval.run.{run_id}",
        "prefect.resource.name": f"taco-eval run {run_id}",
        "taco-eval.model": str(payload.get("model") or ""),
        "taco-eval.deployment": str(payload.get("deployment") or ""),
        "taco-eval.dataset": str(payload.get("dataset") or ""),
        # "true" / "false": whether the drop is beyond noise (paired bootstrap), "unknown" without it.
        "taco-eval.significant": _significant_label(payload),
    }
    related = []
    if payload.get("previous_run_id"):
        related.append({"prefect.resource.id": f"taco-eval.run.{payload['previous_run_id']}",
                        "prefect.resource.role": "baseline"})
    related += _run_context_resources()
    return emit_event(event=REGRESSION_EVENT, resource=resource, related=related, payload=payload)


def _significant_label(payload: dict[str, Any]) -> str:
    noise = payload.get("noise")
    if not isinstance(noise, dict) or "significant" not in noise:
        return "unknown"
    return "true" if noise["significant"] else "false"


def _run_context_resources() -> list[dict[str, str]]:
    from prefect.runtime import deployment, flow_run

    out = []
    if flow_run.id:
        out.append({"prefect.resource.id": f"prefect.flow-run.{flow_run.id}", "prefect.resource.role": "flow-run"})
    if deployment.id:
        out.append({"prefect.resource.id": f"prefect.deployment.{deployment.id}",
                    "prefect.resource.role": "deployment"})
    return out


def record_run(
    output_root: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    deployment: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    flow_run_id: str | None = None,
    metrics: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
    emit: bool = True,
) -> dict[str, Any]:
    """End-of-run bookkeeping in one call: find the previous run of the same deployment and dataset
    (without a deployment: of the same model and dataset) in the output root's index, check for a regression, append this run to the index, and
    emit `taco-eval.regression` when it regressed. Returns {"entry", "previous", "regression"}
    (regression: the event payload or None)."""
    entry = entry_for_run(run_dir, deployment=deployment, flow_run_id=flow_run_id, metrics=metrics,
                          manifest=manifest)
    # A deployment is the series (its model may be a new checkpoint path every night); runs made
    # outside a deployment are compared with the previous run of the same model.
    previous = previous_run(output_root, deployment, None if deployment else entry["model"],
                            dataset=entry["dataset"])
    regression = check_regression(entry, previous, threshold, with_noise=True)
    append_run(output_root, entry)
    if regression is not None and emit:
        emit_regression_event(regression)
    return {"entry": entry, "previous": previous, "regression": regression}


def current_deployment() -> str | None:
    """`<flow name>/<deployment name>` of the running flow run's deployment, None outside one."""
    from prefect.runtime import deployment, flow_run

    if not deployment.id:
        return None
    return f"{flow_run.flow_name}/{deployment.name}"


def output_root_of(run_dir: str | os.PathLike) -> Path:
    """`<output>` for a run folder `<output>/runs/<run_id>`, else the folder's parent."""
    root = Path(run_dir).resolve()
    return root.parent.parent if root.parent.name == "runs" else root.parent
