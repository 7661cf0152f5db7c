"""`taco-eval` command line: one module per subcommand under `taco_eval.commands`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from taco_eval import __version__
from taco_eval.errors import UsageError
from taco_eval.prefect_api import PrefectUnavailable
from tasks.execution.dask_cluster import ClusterError

# Subcommand name → module; each module has `register(subparsers)` and `run(args) -> int`.
COMMANDS = {
    "evaluate": "taco_eval.commands.evaluate",
    "run": "taco_eval.commands.run",
    "generate": "taco_eval.commands.generate",
    "find-batch-size": "taco_eval.commands.find_batch_size",
    "report": "taco_eval.commands.report",
    "history": "taco_eval.commands.history",
    "check-dataset": "taco_eval.commands.check_dataset",
}


VERBOSE_HELP = "show the libraries' warnings too (hidden by default: they are not about your run)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taco-eval", description="Evaluate code LLMs on TACO, fast and safely.")
    parser.add_argument("--version", action="version", version=f"taco-eval {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        importlib.import_module(module).register(sub)
    for command in sub.choices.values():  # `taco-eval run -v` as well as `taco-eval -v run`
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


def quiet_libraries() -> None:
    """Deprecation and future warnings, and transformers' own log warnings, are for the authors of
    the code that triggers them; our own warnings (e.g. a halved batch size) still show."""
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"^(?!(taco_eval|tasks|flows|storage)(\.|$))")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if not args.verbose:
        quiet_libraries()
    module = importlib.import_module(COMMANDS[args.command])
    try:
        return module.run(args)
    except UsageError as exc:
        print(f"taco-eval {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (PrefectUnavailable, ClusterError) as exc:
        print(f"taco-eval {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # disk full, permissions: the run's environment, not a bug to trace
        print(f"taco-eval {args.command}: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"taco-eval {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
