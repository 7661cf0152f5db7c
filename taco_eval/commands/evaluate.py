"""`taco-eval evaluate`: score existing generations against a dataset."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from tasks import defaults
from taco_eval.errors import UsageError
from taco_eval.commands.common import (
    add_cluster_options,
    add_dataset_check_options,
    add_dataset_options,
    add_judge_options,
    check_output_dir,
    dask_target,
    dataset_check_from_args,
    judge_config_from_args,
    load_from_args,
    verified_selection,
)
from taco_eval.progress import ProgressDisplay
from tasks.types import JudgeConfig, ProgramResult
from storage.atomic import write_json
from storage.fs import Location, location
from storage.manifest import new_manifest
from storage.rundir import RunDir, run_id_for
from storage.generations import GenerationsError, read_generations
from storage.tables import RESULTS_SCHEMA, write_rows
from storage.verdict_cache import VerdictCache
from tasks.judging.evaluate import EvaluationStats, Sample, evaluate_samples
from tasks.execution import dask_cluster
from tasks.execution import sandbox
from tasks.metrics import write_metrics
from tasks.plan import DatasetSpec
from tasks.progress import EXECUTE, ProgressEvent, ProgressSink
from tasks.problems import LoadedProblems
from tasks.reporting.summary import format_summary
from tasks.dataset_check.subset import VerifiedSelection, keep_usable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score TACO-format generations.json or generations Parquet",
        description="Run every generated program against the dataset's tests and write "
        "results.parquet, metrics.json and taco_metrics.json.",
    )
    add_dataset_options(p)
    p.add_argument(
        "-g",
        "--generations",
        required=True,
        help="TACO generations.json, a generations .parquet, or a folder of shard-*.parquet (a path or a "
        "URL such as s3://bucket/prefix/generations.json)",
    )
    p.add_argument(
        "-o",
        "--output-dir",
        required=True,
        help="where results and metrics are written: a folder or a URL such as s3://bucket/prefix",
    )
    add_judge_options(p)
    add_dataset_check_options(p)
    add_cluster_options(p)


def run(args: argparse.Namespace) -> int:
    judge_config = judge_config_from_args(args)
    check = dataset_check_from_args(args)
    cluster = dask_target(args)
    try:
        rows = read_generations(args.generations)
    except GenerationsError as exc:
        raise UsageError(str(exc)) from exc
    check_output_dir(args.output_dir)
    out = location(args.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {out}: {exc.strerror or exc}") from exc
    loaded = load_from_args(args)
    for m in loaded.malformed:
        print(f"skipping task {m.index} ({m.problem_id}): {m.reason}", file=sys.stderr)
    verified = verified_selection(check, loaded, args.only_verified)
    if verified is not None and args.only_verified:
        loaded = keep_usable(loaded, verified)
        print(
            f"--only-verified: scoring the {len(loaded.problems)} usable problems; left out: "
            + (", ".join(f"{reason} {len(ids)}" for reason, ids in verified.excluded.items()) or "none"),
            file=sys.stderr,
        )
    selected = {p.task_id for p in loaded.problems} | {m.index for m in loaded.malformed}
    # With filters the user asked for a subset; without, a task_id outside the split is a mistake.
    samples = [Sample(t, i, c) for t, i, c in rows if not loaded.is_filtered or t in selected]
    unknown = sorted({s.task_id for s in samples if s.task_id not in selected})
    if unknown:
        print(
            f"warning: {len(unknown)} task_id(s) are not rows of {loaded.source}:{loaded.split} "
            f"({loaded.rows_in_split} rows), marked skipped: {unknown[:10]}",
            file=sys.stderr,
        )
    if not samples:
        raise UsageError("no generations match the selected problems")

    skipped = {m.index: f"malformed problem: {m.reason}" for m in loaded.malformed}
    with ProgressDisplay() as progress:
        progress(ProgressEvent(EXECUTE, expected=len(samples)))
        if cluster is not None:
            results, stats = judge_on_cluster(
                cluster, loaded, samples, judge_config, args.no_cache, skipped, args.workers, progress
            )
        else:
            cache = None if args.no_cache else VerdictCache(defaults.VERDICT_CACHE)
            results, stats = evaluate_samples(
                loaded.by_task_id(),
                samples,
                judge_config,
                workers=args.workers,
                cache=cache,
                skipped=skipped,
                progress=progress,
            )
            if cache is not None:
                cache.close()
    results.sort(key=lambda r: (r.task_id, r.sample_idx))
    metrics = write_outputs(out, loaded, results, args.k, verified)
    manifest = evaluation_manifest(args, loaded, judge_config, stats)
    if verified is not None:
        manifest["dataset_check"] = verified.describe()
    write_json(RunDir(out).manifest, manifest)
    print(format_summary(metrics, stats))
    print(
        f"wrote {out / 'results.parquet'}, {out / 'metrics.json'}, {out / 'taco_metrics.json'}, {out / 'manifest.json'}"
    )
    return 0


def judge_on_cluster(
    cluster: tuple[str | None, int | None],
    loaded: LoadedProblems,
    samples: list[Sample],
    judge_config: JudgeConfig,
    no_cache: bool,
    skipped: dict[int, str],
    workers_per_node: int | None,
    progress: ProgressSink,
) -> tuple[list[ProgramResult], EvaluationStats]:
    """The verdicts of a local run, judged on a Dask cluster (each worker caches its own verdicts)."""
    from tasks.judging.spread import evaluate_on_cluster

    address, workers = cluster
    with dask_cluster.connect(address, workers, check_modules=("tasks.judging.spread",)) as client:
        return evaluate_on_cluster(
            client,
            loaded.by_task_id(),
            samples,
            judge_config,
            use_cache=not no_cache,
            skipped=skipped,
            workers=workers_per_node,
            progress=progress,
        )


def evaluation_manifest(
    args: argparse.Namespace, loaded: LoadedProblems, judge_config: JudgeConfig, stats: EvaluationStats
) -> dict:
    """What was judged, how and where: the same shape as a pipeline run's manifest, so
    `taco-eval report` finds the dataset, judge config and isolation level."""
    dataset = dataclasses.asdict(
        DatasetSpec(
            args.dataset,
            args.split,
            args.revision,
            args.difficulties,
            args.skills,
            args.task_ids,
            args.limit,
            args.special_judges,
        )
    )
    dataset_record = loaded.manifest_record()
    identity = {
        "dataset": dataset_record["fingerprint"],
        "generations": str(location(args.generations).resolve()),
        "judge": dataclasses.asdict(judge_config),
        "code_version": defaults.CODE_VERSION,
    }
    manifest = new_manifest(
        run_id_for(identity),
        {
            "command": "evaluate",
            "dataset": dataset,
            "generations": identity["generations"],
            "judge": identity["judge"],
            "workers": args.workers,
            "ks": args.k,
            **({"dask_address": args.dask_address, "dask_workers": args.dask_workers} if dask_target(args) else {}),
        },
        identity,
        code_version=defaults.CODE_VERSION,
    )
    manifest["dataset"] = dataset_record
    manifest["isolation"] = sandbox.describe(judge_config.isolation)
    manifest["execution"] = dataclasses.asdict(stats)
    return manifest


def write_outputs(
    out: Location,
    loaded: LoadedProblems,
    results: list[ProgramResult],
    ks: list[int],
    verified: VerifiedSelection | None = None,
) -> dict:
    write_rows(RunDir(out).flat_results, results, RESULTS_SCHEMA)
    return write_metrics(out, loaded.problems, loaded.malformed, results, ks, verified)
