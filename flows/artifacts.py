"""The run's Prefect artifacts: the report's tables and markdown, and the history table.

Call inside a flow or task run; the content comes from `tasks.reporting` (`ReportPaths`,
`HistoryPaths`), which knows nothing of Prefect.
"""

from __future__ import annotations

from typing import Any

from tasks.reporting.history import HistoryPaths
from tasks.reporting.report import ReportPaths


def publish_report_artifacts(paths: ReportPaths, *, key_prefix: str = "taco-eval") -> dict[str, Any]:
    """Create the report's Prefect artifacts (inside a flow or task run): table artifacts
    `<prefix>-pass-at-k`, `-pass-at-k-by-skill`, `-verdicts`, `-comparison` (with --compare) and the
    markdown artifact `<prefix>-report` naming the plots' and HTML report's paths. Returns the
    artifact ids by key."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    run_id = paths.summary.get("run_id")
    ids: dict[str, Any] = {}
    for name, key, desc in (
        ("pass_at_k", "pass-at-k", "pass@k by difficulty with 95% bootstrap CI"),
        ("by_skill", "pass-at-k-by-skill", "pass@k by skill with 95% bootstrap CI"),
        ("verdicts", "verdicts", "verdict mix (samples)"),
        ("comparison", "comparison", "pass@k deltas against the baseline run"),
    ):
        if paths.tables.get(name):
            ids[f"{key_prefix}-{key}"] = create_table_artifact(
                paths.tables[name], key=f"{key_prefix}-{key}", description=f"run {run_id}: {desc}"
            )
    ids[f"{key_prefix}-report"] = create_markdown_artifact(
        paths.artifact_markdown, key=f"{key_prefix}-report", description=f"run {run_id}"
    )
    return ids


def publish_history_artifacts(paths: HistoryPaths, *, key: str = "taco-eval-history") -> Any:
    """A Prefect table artifact of the trend (inside a flow or task run); the chart's path goes into
    its description."""
    from prefect.artifacts import create_table_artifact

    where = f"; chart: {paths.png.resolve()}" if paths.png else ""
    return create_table_artifact(paths.rows, key=key, description=f"pass@k of finished runs over time{where}")
