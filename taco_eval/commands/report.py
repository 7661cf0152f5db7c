"""`taco-eval report`: report.md, self-contained report.html and plots for a scored run folder."""

from __future__ import annotations

import argparse

from storage.fs import location
from taco_eval.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write report.md, report.html and plots/*.png for a run folder",
        description="Report of a scored run: pass@k with bootstrap confidence intervals, by difficulty and "
        "skill, verdict mix, slowest problems, special-judge problems, the run's manifest. "
        "RUN_DIR is OUT/runs/<run_id> of `taco-eval run` or the -o folder of `taco-eval evaluate`. "
        "With --compare: deltas against another run and a paired bootstrap of pass@1.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder to report on")
    p.add_argument(
        "--compare",
        metavar="OTHER_RUN_DIR",
        default=None,
        help="baseline run folder: deltas are RUN_DIR − OTHER_RUN_DIR",
    )
    p.add_argument(
        "-d",
        "--dataset",
        default=None,
        help="dataset to read per-problem difficulty, skills and judges from (default: the run's "
        "problem_info.json, else the dataset in its manifest)",
    )
    p.add_argument("--split", default="test", help="split of --dataset (default: test)")
    p.add_argument("--out", default=None, help="write the report here instead of into RUN_DIR")
    p.add_argument("--resamples", type=int, default=None, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=None, help="bootstrap seed (fixed by default: same numbers each time)")
    p.add_argument(
        "--add-to-index",
        metavar="OUTPUT_ROOT",
        default=None,
        help="also record the run in OUTPUT_ROOT/run-index.jsonl (for `taco-eval history`)",
    )


def run(args: argparse.Namespace) -> int:
    from tasks.reporting.bootstrap import RESAMPLES, SEED
    from tasks.problems import DatasetError
    from tasks.reporting.report import build_report
    from tasks.reporting.rundata import RunFolderError

    if args.resamples is not None and args.resamples < 1:
        raise UsageError(f"--resamples must be at least 1, got {args.resamples}")
    for label, folder in (("RUN_DIR", args.run_dir), ("--compare", args.compare)):
        if folder is not None and not location(folder).is_dir():
            raise UsageError(f"{label} {folder} is not a folder")
    try:
        paths = build_report(
            args.run_dir,
            args.compare,
            dataset=args.dataset,
            split=args.split,
            out_dir=args.out,
            resamples=args.resamples or RESAMPLES,
            seed=args.seed if args.seed is not None else SEED,
        )
    except (RunFolderError, DatasetError) as exc:
        raise UsageError(str(exc)) from exc
    except OSError as exc:
        raise UsageError(f"cannot write the report: {exc}") from exc

    for name, v in paths.summary["headline"].items():
        ci = f" (95% CI {100 * v['low']:.1f}–{100 * v['high']:.1f}%)" if v["low"] is not None else ""
        value = "n/a" if v["value"] is None else f"{100 * v['value']:.1f}%"
        print(f"{name}: {value}{ci}")
    cmp = paths.summary.get("comparison")
    if cmp and cmp.get("paired_bootstrap"):
        pb = cmp["paired_bootstrap"]
        print(
            f"vs {cmp['baseline_run_id']}: pass@1 {100 * pb['delta']:+.1f} pp "
            f"(95% CI {100 * pb['low']:+.1f} … {100 * pb['high']:+.1f}), "
            f"{'larger than noise' if pb['significant'] else 'within noise'}; "
            f"newly solved {len(cmp['newly_solved'])}, newly failing {len(cmp['newly_failing'])}"
        )
    if args.add_to_index:
        from storage.run_index import append_run, entry_for_run

        index = append_run(args.add_to_index, entry_for_run(args.run_dir))
        print(f"recorded in {index}")
    print(f"wrote {paths.markdown}, {paths.html} and {len(paths.plots)} plots in {paths.html.parent / 'plots'}")
    return 0
