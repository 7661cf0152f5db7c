"""`build_report` on synthetic run folders written by the real writers (tables, metrics, manifest)."""

from __future__ import annotations

import json
import socket
from html.parser import HTMLParser
from pathlib import Path

import pytest

from storage.atomic import write_json
from storage.manifest import new_manifest
from tasks.defaults import CODE_VERSION
from storage.rundir import RESULTS, RunDir
from storage.tables import RESULTS_SCHEMA, write_rows
from tasks import statuses
from tasks.types import JUDGE_CASE_INSENSITIVE, JUDGE_NONDETERMINISTIC, ProgramResult
from tasks.metrics import write_metrics
from tasks.plan import DatasetSpec, RunConfig
from tests.helpers import stdin_problem

DIFFICULTIES = ("EASY", "MEDIUM", "HARD")
SKILLS = (("Sorting",), ("Mathematics", "Sorting"), ("Dynamic programming",))


def make_problems(count, judges=None):
    judges = judges or {}
    return [
        stdin_problem(
            ["1\n"],
            ["1\n"],
            task_id=t,
            difficulty=DIFFICULTIES[t % 3],
            skills=SKILLS[t % 3],
            judge=judges.get(t, "default"),
        )
        for t in range(count)
    ]


def make_run(
    folder: Path,
    passes: dict[int, int],
    n: int = 4,
    *,
    problems=None,
    layout: str = "run",
    run_id: str = "run-a",
    model: str = "ckpt-a",
    fail_status=statuses.WRONG_ANSWER,
    runtime_ms=lambda t, i: 10.0 * (t + 1) + i,
    ks=(1, 2),
    shard_size: int = 4,
) -> Path:
    """A scored run folder: task t has `passes[t]` passing samples out of `n`.

    layout "run": manifest.json + sealed results/shard-*.parquet; "flat": results.parquet only.
    """
    problems = problems if problems is not None else make_problems(len(passes))
    results = []
    for t, c in sorted(passes.items()):
        for i in range(n):
            ok = i < c
            status = statuses.PASSED if ok else (fail_status(t, i) if callable(fail_status) else fail_status)
            results.append(
                ProgramResult(
                    t,
                    i,
                    f"{t}-{i}",
                    ok,
                    status,
                    1 if ok else 0,
                    1,
                    [1 if ok else statuses.TACO_CODE.get(status, 0)],
                    runtime_ms(t, i),
                    "" if ok else "mismatch",
                )
            )
    folder.mkdir(parents=True, exist_ok=True)
    if layout == "run":
        rundir = RunDir(folder)
        ids = sorted(passes)
        for shard, start in enumerate(range(0, len(ids), shard_size)):
            chunk = set(ids[start : start + shard_size])
            write_rows(rundir.shard(RESULTS, shard), [r for r in results if r.task_id in chunk], RESULTS_SCHEMA)
            rundir.seal(RESULTS, shard, {"samples": len(chunk) * n})
        cfg = RunConfig(dataset=DatasetSpec(source="synthetic-nonexistent.jsonl"), model=model, n=n, ks=tuple(ks))
        manifest = new_manifest(run_id, cfg.to_dict(), {"model": model}, code_version=CODE_VERSION)
        manifest["isolation"] = "process"
        shard_ids = list(range((len(ids) + shard_size - 1) // shard_size))
        manifest["shards"] = {
            str(s): {
                "task_ids": ids[s * shard_size : (s + 1) * shard_size],
                "generation": {
                    "wall_s": 2.0,
                    "tokens": 500,
                    "tokens_per_s": 250.0,
                    "batch_size": 8,
                    "peak_gpu_memory_bytes": None,
                    "generation_path": "fallback",
                    "generation_path_reason": "sliding-window layers",
                },
                "execution": {"wall_s": 1.5, "tests_run": 300, "tests_per_s": 200.0, "peak_rss_mb": 120.0},
            }
            for s in shard_ids
        }
        manifest["completed_shards"], manifest["failed_shards"] = shard_ids, []
        manifest["dataset"] = {
            "fingerprint": "fp-synthetic",
            "revision": None,
            "rows_in_split": len(problems),
            "special_judges_applied": False,
        }
        write_json(rundir.manifest, manifest)
    else:
        write_rows(folder / "results.parquet", results, RESULTS_SCHEMA)
    write_metrics(folder, problems, [], results, list(ks))
    return folder


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.urls, self.images, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "action", "poster"):
                self.urls.append(value)
            if tag == "img" and name == "src":
                self.images.append(value)

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the report tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_html_report_renders_from_a_run_folder_without_network(tmp_path, no_network):
    from tasks.reporting.report import build_report

    problems = make_problems(9, judges={4: JUDGE_NONDETERMINISTIC, 7: JUDGE_CASE_INSENSITIVE})
    run = make_run(
        tmp_path / "runs" / "run-a",
        {t: t % 5 for t in range(9)},
        problems=problems,
        fail_status=lambda t, i: statuses.TIMEOUT if t == 8 else statuses.WRONG_ANSWER,
    )
    paths = build_report(run, problems=problems)

    assert paths.html == run / "report.html" and paths.markdown == run / "report.md"
    assert set(paths.plots) == {"pass_at_k_by_difficulty", "pass_at_k_by_skill", "verdicts"}
    for png in paths.plots.values():
        assert png.parent == run / "plots" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = paths.html.read_text()
    parser = _Collector()
    parser.feed(page)
    parser.close()
    # Self-contained: every image is inline, nothing points outside the file.
    assert len(parser.images) == 3 and all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert all(u.startswith("data:") for u in parser.urls)
    assert "<link" not in page and "<script" not in page and "http://" not in page and "https://" not in page
    text = " ".join(parser.text)
    for heading in (
        "pass@k overall",
        "pass@k by difficulty",
        "pass@k by skill",
        "Verdicts",
        "Slowest problems",
        "Problems with special judges",
        "Run manifest",
    ):
        assert heading in text, heading
    assert "non-deterministic output" in text and "case-insensitive" in text
    assert "process" in text and "ckpt-a" in text  # manifest: isolation level, model
    assert "250.0 tokens/s" in text and "200 tests/s" in text and "64 MiB" in text
    assert "fallback (sliding-window layers)" in text
    md = paths.markdown.read_text()
    assert "![pass@k by difficulty, % of problems](plots/pass_at_k_by_difficulty.png)" in md
    assert (run / "problem_info.json").exists()


def test_report_numbers_match_metrics_and_tables(tmp_path):
    from tasks.reporting.report import build_report

    problems = make_problems(6)
    run = make_run(tmp_path / "r", {0: 4, 1: 0, 2: 2, 3: 4, 4: 1, 5: 0}, problems=problems)
    metrics = json.loads((run / "metrics.json").read_text())
    paths = build_report(run, problems=problems, resamples=500)
    head = paths.summary["headline"]
    assert head["pass@1"]["value"] == pytest.approx(metrics["pass@1"])
    assert head["pass@1"]["low"] <= metrics["pass@1"] <= head["pass@1"]["high"]
    rows = {r["group"]: r for r in paths.tables["pass_at_k"]}
    for name, group in metrics["by_difficulty"].items():
        assert rows[name]["pass@1"] == pytest.approx(group["pass@1"], abs=1e-4)
        assert rows[name]["problems"] == group["num_problems"]
    skills = {r["skill"]: r for r in paths.tables["by_skill"]}
    assert skills["Sorting"]["problems"] == metrics["by_skill"]["Sorting"]["num_problems"] == 4
    verdicts = {r["verdict"]: r["samples"] for r in paths.tables["verdicts"]}
    assert verdicts == {"passed": 11, "wrong_answer": 13}
    md = paths.markdown.read_text()
    # Slowest problem first: task 5 has the largest runtimes (10 ms × (t + 1) + i).
    slow = md.split("## Slowest problems", 1)[1]
    assert slow.index("task 5") < slow.index("task 4") < slow.index("task 0")


def test_flat_evaluate_folder_without_manifest_or_problem_metadata(tmp_path):
    from tasks.reporting.report import build_report

    run = make_run(tmp_path / "flat", {0: 1, 1: 0, 2: 3}, layout="flat", problems=make_problems(3))
    paths = build_report(run)
    md = paths.markdown.read_text()
    assert "No manifest.json" in md and "pass --dataset" in md
    # Difficulty table falls back to metrics.json's aggregates (no interval per group).
    rows = {r["group"]: r for r in paths.tables["pass_at_k"]}
    assert set(rows) == {"overall", "EASY", "MEDIUM", "HARD"} and rows["EASY"]["pass@1 CI low"] is None
    assert rows["overall"]["pass@1 CI low"] is not None
    assert paths.html.exists()


def test_unsealed_shard_is_left_out_and_noted(tmp_path):
    from tasks.reporting.rundata import load_run

    run = make_run(tmp_path / "r", {t: 2 for t in range(8)}, shard_size=4)
    (run / RESULTS / "shard-00001.json").unlink()
    data = load_run(run)
    assert sorted({r["task_id"] for r in data.results}) == [0, 1, 2, 3]
    assert any("shard-00001.parquet is not sealed" in n for n in data.notes)


def test_not_a_run_folder(tmp_path):
    from tasks.reporting.rundata import RunFolderError, load_run

    with pytest.raises(RunFolderError, match="no metrics.json"):
        load_run(tmp_path)


def test_problem_metadata_from_the_manifest_dataset_or_dash_d(tmp_path, capsys):
    """Without problem_info.json the report loads the dataset its manifest names; a flat folder
    takes it from -d. Either way the groups get intervals and the special judges are found."""
    from taco_eval.cli import main
    from tasks.problems import load_problems
    from tasks.reporting.report import build_report

    problems = load_problems("samples").problems
    passes = {p.task_id: p.task_id % 3 for p in problems}
    run = make_run(tmp_path / "run", passes, n=2, problems=problems)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["config"]["dataset"]["source"] = "samples"
    write_json(run / "manifest.json", manifest)
    paths = build_report(run, resamples=200)
    rows = {r["group"]: r for r in paths.tables["pass_at_k"]}
    assert rows["VERY_HARD"]["pass@1 CI low"] is not None
    md = paths.markdown.read_text()
    assert "case-insensitive tokens" in md.split("## Problems with special judges")[1]
    assert not (run / "problem_info.json").exists()

    flat = make_run(tmp_path / "flat", passes, n=2, problems=problems, layout="flat")
    assert main(["report", str(flat), "-d", "samples", "--resamples", "200"]) == 0
    assert "numeric tolerance" in (flat / "report.md").read_text()
    assert main(["report", str(flat), "-d", str(tmp_path / "nope.jsonl")]) == 2
    assert capsys.readouterr().err.startswith("taco-eval report: error:")
