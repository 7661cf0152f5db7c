"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse

from taco_eval.cli import UsageError
from tasks.problems import SAMPLES, DatasetError, LoadedProblems, load_problems


def csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("problems")
    g.add_argument("-d", "--dataset", default=SAMPLES,
                   help="hub id (BAAI/TACO), .jsonl/.json/.parquet file, or folder; "
                        f"default '{SAMPLES}': the bundled sample problems")
    g.add_argument("--split", default="test", help="split to load (default: test)")
    g.add_argument("--revision", default=None, help="hub dataset revision to pin")
    g.add_argument("--difficulties", type=csv_list, default=None, help="comma-separated, e.g. EASY,MEDIUM")
    g.add_argument("--skills", type=csv_list, default=None, help="comma-separated skill names")
    g.add_argument("--task-ids", type=int_list, default=None, help="comma-separated 0-based row indices")
    g.add_argument("--limit", type=int, default=None, help="at most this many problems")
    g.add_argument("--special-judges", choices=("auto", "taco", "none"), default="auto",
                   help="apply TACO's special-judge list (auto: when the data is TACO's test split)")


def load_from_args(args: argparse.Namespace) -> LoadedProblems:
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    try:
        return load_problems(
            args.dataset, args.split, revision=args.revision, difficulties=args.difficulties,
            skills=args.skills, task_ids=args.task_ids, limit=args.limit, special_judges=args.special_judges,
        )
    except DatasetError as exc:
        raise UsageError(str(exc)) from exc
