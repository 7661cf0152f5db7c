"""The report of a dataset check (`taco-eval check-dataset -o OUT`): OUT/report.md and OUT/report.html
with the counts by status and by difficulty and every problem that is not verified, and the short
text summary the command prints. Built from the folder's own files, so it can be re-rendered."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from storage.atomic import write_text
from storage.dataset_check import CheckDir, read_check_rows
from tasks import statuses
from tasks.reporting.compare import difficulty_key
from tasks.reporting.report import Doc, ReportPaths, _isolation_text, render_html, render_markdown

# Problems listed one by one in the report (the Parquet file has them all).
PROBLEM_LIST_LIMIT = 200
STATUS_MEANING = {
    statuses.VERIFIED: "every reference solution run passes every test",
    statuses.PARTIAL: "some reference solutions pass, some fail",
    statuses.BROKEN: "no reference solution passes",
    statuses.NO_SOLUTIONS: "the row has no reference solution",
    statuses.SKIPPED: "malformed row (tests or solutions unreadable)",
}


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "–"


def _tests_text(failing: list[int], total: int) -> str:
    if not failing:
        return "none in common"
    shown = ", ".join(map(str, failing[:12])) + (" …" if len(failing) > 12 else "")
    return f"{len(failing)} of {total}: {shown}"


def _short_detail(detail: str) -> str:
    """A traceback's last line says what went wrong; the Parquet file keeps the whole detail."""
    head, _, rest = detail.partition(": [exit status")
    if "Traceback" not in rest:
        return detail
    last = [line for line in rest.splitlines() if line.strip()][-1].strip()
    return f"{head}: {last}"


def build_check_report(out_dir: str | os.PathLike) -> ReportPaths:
    """Write report.md and report.html into a dataset check's folder; return their paths."""
    folder = CheckDir(out_dir)
    summary = json.loads(folder.summary.read_text())
    _, _, rows = read_check_rows(folder.parquet)
    counts, total = summary["counts"], summary["problems"]
    ds, judge, execution = summary["dataset"], summary["judge"], summary["execution"]

    doc = Doc()
    doc.h(1, "taco-eval dataset check")
    doc.p(
        f"dataset `{ds['source']}:{ds['split']}` · {total} problems · up to {summary['max_solutions']} reference "
        f"solutions each, every test, the same engine and judge as `taco-eval evaluate`"
    )
    doc.p(f"Folder: `{folder.root.resolve()}`")

    doc.h(2, "Problems by status")
    doc.table(
        ["status", "problems", "share", "meaning"],
        [[s, counts.get(s, 0), _share(counts.get(s, 0), total), STATUS_MEANING[s]] for s in statuses.CHECK_STATUSES],
    )
    doc.p(
        f"**Usable** (verified + partial): {len(summary['usable'])} problems; pass `--dataset-check "
        f"{folder.parquet}` to `taco-eval run` or `evaluate` to add pass@k over them, `--only-verified` to "
        "generate and score only them."
    )

    doc.h(2, "By difficulty")
    doc.table(
        ["difficulty"] + list(statuses.CHECK_STATUSES),
        [
            [d] + [c.get(s, 0) for s in statuses.CHECK_STATUSES]
            for d, c in sorted(summary["by_difficulty"].items(), key=lambda item: difficulty_key(item[0]))
        ],
    )

    doc.h(2, "Problems that are not verified")
    suspects = [r for r in rows if r["status"] != statuses.VERIFIED]
    if suspects:
        doc.table(
            ["problem", "status", "solutions passed / run (of)", "tests every solution fails", "first mismatch"],
            [
                [
                    f"task {r['task_id']} (`{r['problem_id']}`, {r.get('difficulty')})",
                    r["status"],
                    f"{r.get('solutions_passed')} / {r.get('solutions_run')} ({r.get('solutions_total')})",
                    _tests_text(list(r.get("failing_tests") or []), r.get("tests_total") or 0),
                    _short_detail(r.get("detail") or ""),
                ]
                for r in suspects[:PROBLEM_LIST_LIMIT]
            ],
        )
        if len(suspects) > PROBLEM_LIST_LIMIT:
            doc.p(f"… and {len(suspects) - PROBLEM_LIST_LIMIT} more in `{folder.parquet.name}`.")
        doc.p(
            "Test indices are 0-based positions in the row's `input_output`. A test that every solution fails "
            "is the one to suspect: a wrong expected answer, an input in another format, an answer only a "
            "special judge accepts."
        )
    else:
        doc.p("Every checked problem is verified.")

    doc.h(2, "How it was checked")
    doc.table(
        ["field", "value"],
        [
            ["reference solutions per problem", f"the first {summary['max_solutions']} of `solutions`"],
            ["per test", f"{judge['timeout_s']} s, {judge['memory_limit_mb']} MB memory, every test run"],
            ["float tolerance", str(judge["float_tolerance"])],
            ["isolation level", _isolation_text(summary.get("isolation") or judge.get("isolation"))],
            ["solutions run", str(execution["solutions_run"])],
            ["unique programs (from the verdict cache)", f"{execution['programs']} ({execution['programs_cached']})"],
            ["tests run", f"{execution['tests_run']} ({execution['tests_per_s']:g} tests/s)"],
            ["wall time", f"{execution['wall_s']:.1f} s"],
            ["code version", str(summary.get("code_version"))],
        ],
    )

    paths = ReportPaths(markdown=folder.report, html=folder.report_html, summary={"counts": counts})
    write_text(paths.markdown, render_markdown(doc, folder.root))
    write_text(paths.html, render_html(doc, "taco-eval dataset check"))
    paths.artifact_markdown = render_markdown(doc, folder.root, image_mode="path")
    paths.tables["dataset_check"] = [
        {"status": s, "problems": counts.get(s, 0), "share": round(counts.get(s, 0) / total, 4) if total else None}
        for s in statuses.CHECK_STATUSES
    ]
    return paths


def format_check_summary(summary: dict[str, Any], out_dir: str | os.PathLike) -> str:
    """What `taco-eval check-dataset` prints: counts by status, the time it took, where the files are."""
    counts, execution = summary["counts"], summary["execution"]
    folder = CheckDir(Path(out_dir))
    return "\n".join(
        [
            f"{summary['problems']} problems: " + ", ".join(f"{s} {counts[s]}" for s in statuses.CHECK_STATUSES),
            f"usable (verified + partial): {len(summary['usable'])}",
            f"ran {execution['solutions_run']} reference solutions ({execution['programs_cached']} of "
            f"{execution['programs']} unique programs from the cache), {execution['tests_run']} tests in "
            f"{execution['wall_s']:.1f} s",
            f"wrote {folder.parquet}, {folder.summary}, {folder.report_html}",
        ]
    )
