"""Prefect events and runtime context: the `taco-eval.regression` event, the current deployment."""

from __future__ import annotations

from typing import Any

from tasks.reporting.regression import REGRESSION_EVENT


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
        related.append(
            {"prefect.resource.id": f"taco-eval.run.{payload['previous_run_id']}", "prefect.resource.role": "baseline"}
        )
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
        out.append(
            {"prefect.resource.id": f"prefect.deployment.{deployment.id}", "prefect.resource.role": "deployment"}
        )
    return out


def current_deployment() -> str | None:
    """`<flow name>/<deployment name>` of the running flow run's deployment, None outside one."""
    from prefect.runtime import deployment, flow_run

    if not deployment.id:
        return None
    return f"{flow_run.flow_name}/{deployment.name}"
