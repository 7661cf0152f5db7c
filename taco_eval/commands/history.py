"""`taco-eval history`: pass@k of the finished runs under an output root, over time."""

from __future__ import annotations

import argparse
from storage.fs import location

from taco_eval.commands.common import int_list
from taco_eval.errors import UsageError
from tasks import defaults


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "history",
        help="trend of pass@1/pass@10 over the finished runs of an output root",
        description="Reads OUTPUT_ROOT/run-index.jsonl (one line per finished run, appended by the flow) and "
        "prints the runs oldest first; writes history.md and a line chart history.png into "
        "OUTPUT_ROOT (history-<deployment>-<model>.* with --deployment / --model).",
    )
    p.add_argument(
        "-o", "--output-dir", required=True, metavar="OUTPUT_ROOT", help="the output root holding run-index.jsonl"
    )
    p.add_argument("--model", default=None, help="only runs of this model (as given to the run)")
    p.add_argument("--deployment", default=None, help="only runs of this Prefect deployment")
    p.add_argument("--dataset", default=None, help="only runs on this dataset, as SOURCE:SPLIT")
    p.add_argument(
        "--k",
        type=int_list,
        default=list(defaults.HISTORY_KS),
        help="pass@k columns (default " + ",".join(map(str, defaults.HISTORY_KS)) + ")",
    )
    p.add_argument("--last", type=int, default=None, help="only the N most recent runs")


def run(args: argparse.Namespace) -> int:
    from storage.run_index import index_path
    from tasks.reporting.history import format_history, history_entries, text_table, write_history

    root = location(args.output_dir)
    if not index_path(root).exists():
        raise UsageError(
            f"no run index at {index_path(root)}: finished runs of the taco-eval flow are recorded "
            "there (or add one with `taco-eval report RUN_DIR --add-to-index OUTPUT_ROOT`)"
        )
    if args.last is not None and args.last < 1:
        raise UsageError(f"--last must be at least 1, got {args.last}")
    if not args.k or any(k < 1 for k in args.k):
        raise UsageError("--k needs positive integers, e.g. 1,10")
    if not history_entries(root, model=args.model, deployment=args.deployment, dataset=args.dataset):
        raise UsageError("no finished runs match the filters in " + str(index_path(root)))
    try:
        paths = write_history(
            root, model=args.model, deployment=args.deployment, dataset=args.dataset, ks=args.k, last=args.last
        )
    except OSError as exc:
        raise UsageError(f"cannot write the history: {exc}") from exc
    print(text_table(format_history(paths.rows, args.k)))
    print(f"wrote {paths.markdown} and {paths.png}")
    return 0
