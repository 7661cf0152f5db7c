"""Progress events of the stages (tasks/progress.py): what generation and execution report adds up
to what they did, and a failed shard takes back what it reported."""

from __future__ import annotations

import threading

import pytest

from tasks.progress import EXECUTE, GENERATE, ProgressEvent, current, reporting_to, retracted_on_failure
from tests.helpers import stdin_problem


def totals(events, stage):
    picked = [e for e in events if e.stage == stage]
    return sum(e.done for e in picked), sum(e.work for e in picked), sum(e.expected for e in picked)


def test_a_failed_block_takes_back_what_it_reported():
    seen: list[ProgressEvent] = []
    with pytest.raises(RuntimeError):
        with retracted_on_failure(seen.append) as report:
            report(ProgressEvent(GENERATE, done=3, work=30))
            report(ProgressEvent(EXECUTE, done=1, work=2, expected=-1))
            raise RuntimeError("the shard failed")
    assert len(seen) == 4
    assert totals(seen, GENERATE) == (0, 0, 0) and totals(seen, EXECUTE) == (0, 0, 0)

    kept: list[ProgressEvent] = []
    with retracted_on_failure(kept.append) as report:
        report(ProgressEvent(GENERATE, done=2, work=7))
    assert kept == [ProgressEvent(GENERATE, done=2, work=7)]
    with retracted_on_failure(None) as report:
        assert report is None


def test_the_installed_sink_is_seen_by_other_threads_and_restored():
    sink = [].append
    assert current() is None
    with reporting_to(sink):
        seen = []
        worker = threading.Thread(target=lambda: seen.append(current()))
        worker.start()
        worker.join()
        assert seen == [sink]
    assert current() is None


def test_generate_shard_reports_each_batch_and_they_add_up(tiny_model_dir, tmp_path):
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard
    from tasks.problems import load_problems

    problems = load_problems(limit=2).problems
    events: list[ProgressEvent] = []
    sampling = SamplingConfig(n=3, temperature=0.7, max_tokens=8, batch_size=2, prompt_format="taco")
    stats = generate_shard(
        problems, ModelConfig(str(tiny_model_dir)), sampling, 0, tmp_path / "g.parquet", events.append
    )
    assert {e.stage for e in events} == {GENERATE}
    assert len(events) > 1  # batches of 2 sequences: reported as they finish, not once at the end
    assert totals(events, GENERATE) == (stats.samples, stats.tokens, 0) == (6, stats.tokens, 0)
    # Each batch says how long it took: the time the rates are measured over.
    assert all(e.seconds > 0 for e in events) and sum(e.seconds for e in events) <= stats.wall_s


def test_evaluate_samples_counts_programs_not_identical_samples(tmp_path):
    from storage.verdict_cache import VerdictCache
    from tasks.judging.evaluate import Sample, evaluate_samples
    from tasks.types import JudgeConfig

    problem = stdin_problem(["1\n", "2\n"], ["1\n", "2\n"])
    codes = ["print(input())", "print(input())", "print(1)", "syntax error("]
    samples = [Sample(problem.task_id, i, c) for i, c in enumerate(codes)]
    cache = VerdictCache(tmp_path / "verdicts.sqlite")
    try:
        for attempt in ("fresh", "cached"):
            events: list[ProgressEvent] = []
            _, stats = evaluate_samples(
                {problem.task_id: problem},
                samples,
                JudgeConfig(timeout_s=2),
                workers=1,
                cache=cache,
                progress=events.append,
            )
            done, work, correction = totals(events, EXECUTE)
            # The caller expects one program per sample; the correction leaves the real number.
            assert len(samples) + correction == stats.programs == done == 3
            assert work == stats.tests_run == (4 if attempt == "fresh" else 0)  # 2 + 2 + 0 (no test runs)
            assert events[0].done == stats.programs_cached
            assert all(e.seconds >= 0 for e in events) and sum(e.seconds for e in events) <= stats.wall_s
    finally:
        cache.close()
