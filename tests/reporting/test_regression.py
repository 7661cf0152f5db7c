"""Regression check, the `taco-eval.regression` event on a real Prefect test server (read back
through the events API), the flow-side calls (record_run, report artifacts), and the README's
automation (validated by Prefect's own schema and templating)."""

from __future__ import annotations

import datetime
import re
import time
import uuid
from pathlib import Path

import pytest

from storage.run_index import append_run, read_index
from flows.finish import record_run, report_finished_run
from tasks.reporting.regression import REGRESSION_EVENT, check_regression
from tests.reporting.test_report import make_problems, make_run

README = Path(__file__).resolve().parents[2] / "README.md"


def entry(run_id, p1, p10=None, **extra):
    values = {"pass@1": p1, **({"pass@10": p10} if p10 is not None else {})}
    return {
        "run_id": run_id,
        "finished_at": "2026-03-01T01:00:00+00:00",
        "model": "m",
        "deployment": "taco-eval/nightly",
        "dataset": "BAAI/TACO:test",
        "pass_at_k": values,
        "run_dir": f"/nowhere/{run_id}",
        **extra,
    }


def test_check_regression_threshold():
    prev = entry("prev", 0.30, 0.60)
    assert check_regression(entry("cur", 0.29, 0.50), prev, 0.02) is None  # 1 point: within threshold
    assert check_regression(entry("cur", 0.28, 0.50), prev, 0.02) is None  # exactly 2 points: not beyond
    assert check_regression(entry("cur", 0.35), prev, 0.02) is None  # better
    assert check_regression(entry("cur", 0.10), None, 0.02) is None  # first run of the deployment
    payload = check_regression(entry("cur", 0.25, 0.55), prev, 0.02)
    assert payload["metric"] == "pass@1" and payload["run_id"] == "cur" and payload["previous_run_id"] == "prev"
    assert (payload["current"], payload["previous"], payload["threshold"]) == (0.25, 0.30, 0.02)
    assert payload["delta"] == pytest.approx(-0.05)
    assert payload["deltas"]["pass@10"]["delta"] == pytest.approx(-0.05)
    assert payload["deployment"] == "taco-eval/nightly" and payload["model"] == "m"
    # metrics.json works as `current` too (no run ids then).
    assert check_regression({"pass@1": 0.2, "ks": [1]}, prev, 0.05)["delta"] == pytest.approx(-0.1)
    assert check_regression(entry("cur", 0.29), prev, 0.0) is not None
    assert check_regression(entry("cur", 0.1), prev, 0.02, metric="pass@100") is None
    with pytest.raises(ValueError):
        check_regression(entry("cur", 0.1), prev, -0.1)


def test_check_regression_with_noise_from_the_run_folders(tmp_path):
    problems = make_problems(30)
    before = make_run(tmp_path / "runs" / "before", {t: 3 for t in range(30)}, problems=problems, run_id="before")
    after = make_run(
        tmp_path / "runs" / "after", {t: (0 if t < 12 else 3) for t in range(30)}, problems=problems, run_id="after"
    )
    payload = check_regression(
        entry("after", 0.45, run_dir=str(after)), entry("before", 0.75, run_dir=str(before)), 0.02, with_noise=True
    )
    noise = payload["noise"]
    assert noise["delta"] == pytest.approx(-0.3) and noise["significant"] and noise["high"] < 0
    assert noise["newly_failing"] == 12 and noise["newly_solved"] == 0
    missing = check_regression(entry("x", 0.1), entry("y", 0.5), 0.02, with_noise=True)
    assert missing["noise"] is None  # run folders gone: the numbers still go out


def test_record_run_indexes_and_compares_with_the_previous_run_of_the_deployment(tmp_path):
    problems = make_problems(10)
    runs = tmp_path / "runs"
    a = make_run(runs / "a", {t: 2 for t in range(10)}, problems=problems, run_id="a", model="ckpt-1")
    b = make_run(
        runs / "b", {t: (0 if t < 3 else 2) for t in range(10)}, problems=problems, run_id="b", model="ckpt-2"
    )  # a new checkpoint path: same deployment, so still compared
    c = make_run(runs / "c", {t: 0 for t in range(10)}, problems=problems, run_id="c", model="ckpt-3")
    first = record_run(tmp_path, a, deployment="nightly", emit=False)
    assert first["previous"] is None and first["regression"] is None
    second = record_run(tmp_path, b, deployment="nightly", threshold=0.1, emit=False)
    assert second["previous"]["run_id"] == "a"
    assert second["regression"]["delta"] == pytest.approx(-0.15)
    assert second["regression"]["noise"]["newly_failing"] == 3
    # An ad-hoc run (no deployment) is compared only with ad-hoc runs of its model: none yet.
    assert record_run(tmp_path, c, deployment=None, emit=False)["previous"] is None
    assert [(e["run_id"], e["deployment"]) for e in read_index(tmp_path)] == [
        ("a", "nightly"),
        ("b", "nightly"),
        ("c", None),
    ]


def _read_events(resource_id, expected, timeout=20.0):
    """Events about `resource_id` as stored by the test server (persisted asynchronously)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    flt = EventFilter(event=EventNameFilter(name=[REGRESSION_EVENT]), resource=EventResourceFilter(id=[resource_id]))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            events = client.read_events(flt, limit=50).events
            if len(events) >= expected or time.monotonic() > deadline:
                return events
            time.sleep(0.25)


def test_worse_nightly_run_emits_the_regression_event(prefect_api, tmp_path):
    """Two nightly runs in one output root, the second clearly worse: recorded in the index, and the
    event reaches the Prefect API with the numbers, inside a real flow run."""
    from prefect import flow

    out = tmp_path / "out"
    problems = make_problems(20)
    tag = uuid.uuid4().hex[:8]
    good = make_run(
        out / "runs" / f"good-{tag}", {t: 4 for t in range(20)}, problems=problems, run_id=f"good-{tag}", model="ckpt"
    )
    bad = make_run(
        out / "runs" / f"bad-{tag}",
        {t: (0 if t < 8 else 4) for t in range(20)},
        problems=problems,
        run_id=f"bad-{tag}",
        model="ckpt",
    )

    @flow(name="taco-eval-regression-test")
    def nightly(run_dir: str) -> dict:
        # What the taco-eval flow calls once metrics.json is written.
        return report_finished_run(
            out, run_dir, problems=problems, deployment="taco-eval/nightly", regression_threshold=0.05
        )

    first = nightly(str(good))
    assert first["previous"] is None and first["regression"] is None
    assert "comparison" not in first["report"].tables
    second = nightly(str(bad))
    assert second["previous"]["run_id"] == f"good-{tag}"
    # The report compares with the previous run of the deployment; the history covers both runs.
    assert second["report"].summary["comparison"]["newly_failing"] == list(range(8))
    assert second["report"].summary["comparison"]["paired_bootstrap"]["significant"]
    assert [r["run_id"] for r in second["history"].rows] == [f"good-{tag}", f"bad-{tag}"]
    assert second["history"].png.name == "history-taco-eval-nightly.png"
    reg = second["regression"]
    assert reg["current"] == pytest.approx(0.6) and reg["previous"] == pytest.approx(1.0)
    assert [e["run_id"] for e in read_index(out)] == [f"good-{tag}", f"bad-{tag}"]

    events = _read_events(f"taco-eval.run.bad-{tag}", expected=1)
    assert len(events) == 1, "the regression event did not reach the API"
    ev = events[0]
    assert ev.event == "taco-eval.regression"
    assert ev.resource["taco-eval.deployment"] == "taco-eval/nightly" and ev.resource["taco-eval.model"] == "ckpt"
    assert ev.resource["taco-eval.significant"] == "true"
    assert ev.payload["delta"] == pytest.approx(-0.4) and ev.payload["threshold"] == 0.05
    assert ev.payload["previous_run_id"] == f"good-{tag}" and ev.payload["noise"]["newly_failing"] == 8
    roles = {r.role: r.id for r in ev.related}
    assert roles["baseline"] == f"taco-eval.run.good-{tag}"
    assert roles["flow-run"].startswith("prefect.flow-run.")
    # The good run (no regression) produced no event.
    assert _read_events(f"taco-eval.run.good-{tag}", expected=1, timeout=0.5) == []


def test_report_artifacts_are_published(prefect_api, tmp_path):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.artifacts import publish_history_artifacts, publish_report_artifacts
    from tasks.reporting.history import write_history
    from tasks.reporting.report import build_report

    problems = make_problems(6)
    base = make_run(tmp_path / "runs" / "base", {t: 2 for t in range(6)}, problems=problems, run_id="base")
    cur = make_run(tmp_path / "runs" / "cur", {t: t % 4 for t in range(6)}, problems=problems, run_id="cur")
    append_run(tmp_path, entry("base", 0.5, run_dir=str(base)))
    prefix = "taco-eval-test-" + uuid.uuid4().hex[:6]

    @flow(name="taco-eval-artifacts-test")
    def publish() -> dict:
        paths = build_report(cur, compare_to=base, problems=problems, resamples=200)
        ids = publish_report_artifacts(paths, key_prefix=prefix)
        ids[f"{prefix}-history"] = publish_history_artifacts(write_history(tmp_path), key=f"{prefix}-history")
        return ids

    ids = publish()
    assert set(ids) == {
        f"{prefix}-{k}" for k in ("pass-at-k", "pass-at-k-by-skill", "verdicts", "comparison", "report", "history")
    }
    with get_client(sync_client=True) as client:
        arts = {
            a.key: a for a in client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=prefix)))
        }
    assert arts[f"{prefix}-pass-at-k"].type == "table" and arts[f"{prefix}-report"].type == "markdown"
    report = arts[f"{prefix}-report"].data
    assert str((cur / "plots" / "pass_at_k_by_difficulty.png").resolve()) in report
    assert str((cur / "report.html").resolve()) in report


def _readme_automation():
    text = README.read_text()
    section = text.split("## Reports, history and regression alerts", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def test_readme_automation_is_valid_and_matches_the_event(prefect_api):
    """The automation in the README parses as Prefect's own schema, the server accepts it, its
    trigger covers our event, and its message templates render with the event's numbers."""
    import yaml
    from prefect.blocks.notifications import SlackWebhook
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore
    from prefect.server.events.schemas.automations import EventTrigger
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.server.utilities.user_templates import render_user_template_sync

    block_id = SlackWebhook(url="https://hooks.slack.com/services/T000/B000/XXXX").save(
        f"alerts-{uuid.uuid4().hex[:6]}"
    )
    data = yaml.safe_load(_readme_automation().replace("00000000-0000-0000-0000-000000000000", str(block_id)))
    automation = AutomationCore.model_validate(data)
    with get_client(sync_client=True) as client:
        created = client.create_automation(automation)
        assert client.read_automation(created).name == "taco-eval regression"

    payload = check_regression(entry("r2", 0.214, 0.5), entry("r1", 0.251, 0.55), 0.02)
    now = datetime.datetime.now(datetime.timezone.utc)
    event = ReceivedEvent(
        occurred=now,
        id=uuid.uuid4(),
        event=REGRESSION_EVENT,
        resource={"prefect.resource.id": "taco-eval.run.r2", "taco-eval.deployment": "taco-eval/nightly"},
        payload=payload,
    )
    trigger = EventTrigger.model_validate(data["trigger"])
    assert trigger.covers(event)
    other = ReceivedEvent(
        occurred=now,
        id=uuid.uuid4(),
        event="prefect.flow-run.Completed",
        resource={"prefect.resource.id": "taco-eval.run.r2"},
    )
    assert not trigger.covers(other)
    action = data["actions"][0]
    subject = render_user_template_sync(action["subject"], {"event": event})
    assert subject == "taco-eval regression: taco-eval/nightly pass@1 -3.7 pp"
    body = render_user_template_sync(action["body"], {"event": event})
    assert "pass@1 21.4% vs 25.1% in run r1 (threshold 2.0 points)" in body
    assert "taco-eval report /nowhere/r2 --compare /nowhere/r1" in body
