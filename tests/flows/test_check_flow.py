"""The `taco-eval-check` flow on a real Prefect engine, and the `taco-eval` flow's check parameters."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from tests.dataset_check.planted import EXPECTED, MAX_SOLUTIONS, write_planted


def test_check_flow_writes_the_check_and_its_artifacts(prefect_api, tmp_path):
    import asyncio

    from prefect.client.orchestration import get_client

    from flows.dataset_check import taco_eval_check_flow

    data = write_planted(tmp_path / "planted.jsonl")
    out = tmp_path / "check"
    state = taco_eval_check_flow(
        dataset=str(data), max_solutions=MAX_SOLUTIONS, timeout=10.0, workers=1, output_dir=str(out), return_state=True
    )
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["counts"] == {"verified": 2, "partial": 1, "broken": 2, "no_solutions": 1, "skipped": 2}
    rows = pq.read_table(summary["parquet"]).to_pylist()
    assert {r["task_id"]: (r["status"], r["failing_tests"]) for r in rows} == EXPECTED
    assert json.loads((out / "dataset_check.json").read_text())["usable"] == [0, 5, 7]
    assert summary["report_html"].endswith("report.html")

    async def read(key):
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            return found[-1] if found else None

    counts = asyncio.run(read("taco-eval-check-counts"))
    assert counts is not None and "broken" in str(counts.data)
    report = asyncio.run(read("taco-eval-check-report"))
    assert report is not None and "Problems that are not verified" in report.data


def test_run_flow_refuses_a_bad_check_parameter(prefect_api, tmp_path):
    from flows.taco_eval import taco_eval_flow

    state = taco_eval_flow(dataset_check=str(tmp_path / "nope"), output_dir=str(tmp_path), return_state=True)
    assert state.is_failed() and "does not exist" in state.message
    state = taco_eval_flow(only_verified=True, output_dir=str(tmp_path), return_state=True)
    assert state.is_failed() and "only_verified needs dataset_check" in state.message
