"""`taco-eval check-dataset`: run each problem's own reference solutions; flag broken problems."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from storage.verdict_cache import VerdictCache
from taco_eval.commands.common import add_dataset_options, add_judge_options, judge_config_from_args, load_from_args
from taco_eval.errors import UsageError
from taco_eval.progress import EvaluationProgress
from tasks import defaults
from tasks.dataset_check.check import run_check
from tasks.reporting.check_report import build_check_report, format_check_summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-dataset",
        help="run each problem's own reference solutions on its tests; flag broken problems",
        description="Runs up to K of each problem's `solutions` on all its tests with the engine and judge of "
        "`evaluate`, and writes OUT/dataset_check.parquet (one row per problem: verified, partial, broken, "
        "no_solutions or skipped, and the tests every solution fails), OUT/dataset_check.json and a report. "
        "Pass the result to `run` / `evaluate` with --dataset-check.",
    )
    add_dataset_options(p)
    p.add_argument("-o", "--output-dir", required=True, help="where dataset_check.parquet/.json and the report go")
    p.add_argument(
        "--max-solutions",
        type=int,
        default=defaults.CHECK_MAX_SOLUTIONS,
        metavar="K",
        help=f"run the first K reference solutions of each problem (default {defaults.CHECK_MAX_SOLUTIONS})",
    )
    add_judge_options(p, scoring=False)


def run(args: argparse.Namespace) -> int:
    judge_config = judge_config_from_args(args)
    if args.max_solutions < 1:
        raise UsageError(f"--max-solutions must be at least 1, got {args.max_solutions}")
    out = Path(args.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {out}: {exc.strerror}") from exc
    loaded = load_from_args(args, max_solutions=args.max_solutions)
    for m in loaded.malformed:
        print(f"skipping task {m.index} ({m.problem_id}): {m.reason}", file=sys.stderr)
    if not loaded.problems and not loaded.malformed:
        raise UsageError("no problems match the selection")
    refs = [loaded.solutions[p.task_id] for p in loaded.problems]
    solutions = sum(len(r.codes) for r in refs if r.error is None)
    cache = None if args.no_cache else VerdictCache(defaults.VERDICT_CACHE)
    try:
        with EvaluationProgress(solutions, desc=f"running {solutions} reference solutions") as progress:
            summary, _ = run_check(
                loaded,
                judge_config,
                out,
                max_solutions=args.max_solutions,
                workers=args.workers,
                cache=cache,
                on_progress=progress.update,
            )
    finally:
        if cache is not None:
            cache.close()
    build_check_report(out)
    print(format_check_summary(summary, out))
    return 0
