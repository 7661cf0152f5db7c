"""What the flow does once a run's metrics.json is written: report, index, regression check, history.

`report_finished_run` is the flow's one call; `record_run` is its indexing-and-alert step, usable
on its own.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from flows.artifacts import publish_history_artifacts, publish_report_artifacts
from flows.events import current_deployment, emit_regression_event
from storage.run_index import append_run, entry_for_run, previous_run
from storage.rundir import RunDir
from tasks.reporting.history import write_history
from tasks import defaults
from tasks.reporting.regression import check_regression
from tasks.reporting.report import build_report
from tasks.types import Problem


def previous_of(output_root: str | os.PathLike, entry: dict[str, Any], deployment: str | None) -> dict[str, Any] | None:
    """The run this one is compared with: the previous indexed run of the same deployment and
    dataset. A deployment is the series (its model may be a new checkpoint path every night); runs
    made outside a deployment are compared with the previous run of the same model."""
    return previous_run(output_root, deployment, None if deployment else entry["model"], dataset=entry["dataset"])


def record_run(
    output_root: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    deployment: str | None = None,
    threshold: float = defaults.REGRESSION_THRESHOLD,
    flow_run_id: str | None = None,
    metrics: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
    emit: bool = True,
) -> dict[str, Any]:
    """End-of-run bookkeeping in one call: find the previous run of the same deployment and dataset
    (without a deployment: of the same model and dataset) in the output root's index, check for a regression, append this run to the index, and
    emit `taco-eval.regression` when it regressed. Returns {"entry", "previous", "regression"}
    (regression: the event payload or None)."""
    entry = entry_for_run(run_dir, deployment=deployment, flow_run_id=flow_run_id, metrics=metrics, manifest=manifest)
    previous = previous_of(output_root, entry, deployment)
    regression = check_regression(entry, previous, threshold, with_noise=True)
    append_run(output_root, entry)
    if regression is not None and emit:
        emit_regression_event(regression)
    return {"entry": entry, "previous": previous, "regression": regression}


def report_finished_run(
    output_root: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    problems: Sequence[Problem] | None = None,
    deployment: str | None = "auto",
    regression_threshold: float = defaults.REGRESSION_THRESHOLD,
    flow_run_id: str | None = None,
    publish: bool = True,
) -> dict[str, Any]:
    """Everything the flow does after metrics.json is written, in order:

    1. find the previous indexed run of the same deployment and dataset (without a deployment: of
       the same model), before this run is indexed;
    2. `build_report(run_dir, compare_to=<that run's folder>, problems=problems)`;
    3. `publish_report_artifacts` (tables + markdown naming the plots);
    4. `record_run`: append this run to `<output_root>/run-index.jsonl`, and emit
       `taco-eval.regression` if pass@1 fell by more than `regression_threshold`;
    5. `write_history` for this deployment (or model) and its table artifact.

    `deployment="auto"` reads `<flow>/<deployment>` from the running flow run (None outside a
    deployment). `publish=False` skips the Prefect artifacts (steps 3 and 5's artifact), e.g.
    outside a flow run; the event is still emitted. Returns {"report": ReportPaths, "previous":
    entry or None, "regression": payload or None, "history": HistoryPaths}.
    """
    if deployment == "auto":
        deployment = current_deployment()
    entry = entry_for_run(run_dir, deployment=deployment, flow_run_id=flow_run_id)
    previous = previous_of(output_root, entry, deployment)
    baseline = None
    if (
        previous
        and previous.get("run_id") != entry["run_id"]
        and previous.get("run_dir")
        and RunDir(previous["run_dir"]).metrics.exists()
    ):
        baseline = previous["run_dir"]
    paths = build_report(run_dir, compare_to=baseline, problems=problems)
    if publish:
        publish_report_artifacts(paths)
    recorded = record_run(
        output_root, run_dir, deployment=deployment, threshold=regression_threshold, flow_run_id=flow_run_id
    )
    history = write_history(output_root, deployment=deployment, model=None if deployment else entry["model"])
    if publish:
        publish_history_artifacts(history)
    return {"report": paths, "previous": recorded["previous"], "regression": recorded["regression"], "history": history}
