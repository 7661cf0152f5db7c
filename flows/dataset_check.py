"""The `taco-eval-check` flow: `taco-eval check-dataset` as a Prefect flow (deployment
`taco-eval-check/dataset-check` in prefect.yaml), with a progress artifact, the counts as a table
artifact and the report as a markdown artifact.

One task does the work: the check is resumable through the verdict cache (every finished program's
verdict is stored as it completes), so a retried or re-run flow re-executes only what had not
finished, and Prefect's own result cache would add nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from storage.dataset_check import CheckDir
from storage.verdict_cache import VerdictCache
from tasks import defaults
from tasks.dataset_check.check import run_check
from tasks.execution import sandbox
from tasks.judging.evaluate import EvaluationStats
from tasks.problems import load_problems
from tasks.reporting.check_report import build_check_report
from tasks.types import JudgeConfig

# Update the progress artifact at most this often (programs), not once per program.
PROGRESS_EVERY = 20


@task(name="check-dataset")
def check_dataset_task(
    dataset: dict[str, Any], judge: dict[str, Any], max_solutions: int, workers: int | None, output_dir: str
) -> dict[str, Any]:
    logger = get_run_logger()
    loaded = load_problems(**dataset, max_solutions=max_solutions)
    for m in loaded.malformed:
        logger.warning("skipping task %s (%s): %s", m.index, m.problem_id, m.reason)
    progress_id = create_progress_artifact(
        progress=0.0, key="taco-eval-check-progress", description="reference solutions run"
    )

    def on_progress(stats: EvaluationStats, tests: int) -> None:
        done = stats.programs_cached + stats.programs_executed
        if done == stats.programs or done % PROGRESS_EVERY == 0:
            update_progress_artifact(
                progress_id,
                100.0 * done / max(1, stats.programs),
                description=f"{done} of {stats.programs} programs, {stats.tests_run} tests",
            )

    cache = VerdictCache(defaults.VERDICT_CACHE)
    try:
        summary, _ = run_check(
            loaded,
            JudgeConfig(**judge),
            output_dir,
            max_solutions=max_solutions,
            workers=workers,
            cache=cache,
            on_progress=on_progress,
        )
    finally:
        cache.close()
    return summary


@flow(name="taco-eval-check", log_prints=True)
def taco_eval_check_flow(
    dataset: str = "samples",
    split: str = "test",
    dataset_revision: str | None = None,
    difficulties: list[str] | None = None,
    skills: list[str] | None = None,
    task_ids: list[int] | None = None,
    limit: int | None = None,
    special_judges: str = "auto",
    max_solutions: int = defaults.CHECK_MAX_SOLUTIONS,
    timeout: float = defaults.DEFAULT_TIMEOUT_S,
    memory_limit_mb: int = defaults.DEFAULT_MEMORY_LIMIT_MB,
    isolation: str = "auto",
    float_tolerance: float = defaults.FLOAT_TOLERANCE,
    workers: int | None = None,
    output_dir: str = defaults.CHECK_OUTPUT_DIR,
) -> dict[str, Any]:
    """Run up to `max_solutions` of each problem's reference solutions on all its tests; write
    `dataset_check.parquet`, `dataset_check.json` and the report into `output_dir`."""
    if max_solutions < 1:
        raise ValueError(f"max_solutions must be at least 1, got {max_solutions}")
    judge = JudgeConfig(
        timeout_s=timeout,
        memory_limit_mb=memory_limit_mb,
        early_stop=False,
        isolation=sandbox.resolve(isolation),
        float_tolerance=float_tolerance,
    )
    dataset_args = {
        "source": dataset,
        "split": split,
        "revision": dataset_revision,
        "difficulties": difficulties,
        "skills": skills,
        "task_ids": task_ids,
        "limit": limit,
        "special_judges": special_judges,
    }
    summary = check_dataset_task(dataset_args, dataclasses.asdict(judge), max_solutions, workers, output_dir)
    paths = build_check_report(output_dir)
    create_table_artifact(
        paths.tables["dataset_check"], key="taco-eval-check-counts", description="problems by check status"
    )
    create_markdown_artifact(paths.artifact_markdown, key="taco-eval-check-report", description="dataset check")
    get_run_logger().info("dataset check: %s", summary["counts"])
    folder = CheckDir(output_dir)
    return {
        "counts": summary["counts"],
        "usable": len(summary["usable"]),
        "parquet": str(folder.parquet.resolve()),
        "report_html": str(paths.html.resolve()),
    }
