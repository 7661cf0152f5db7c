"""The run report people look at: `report.md`, a self-contained `report.html` and `plots/*.png`.

API (plain Python; the flow and `taco-eval report` call it):

- `build_report(run_dir, compare_to=None, *, problems=None, dataset=None) -> ReportPaths` reads a run
  folder (pipeline run or flat `evaluate` folder) and writes report.md, report.html and
  plots/*.png into it. `compare_to` (a run folder) adds deltas, newly solved / failing problems and
  a paired bootstrap of pass@1. `problems` (the run's `Problem`s, which the flow has in hand) gives
  per-problem difficulty, skills and judge, and is saved as problem_info.json for later
  re-rendering.
- `flows.artifacts.publish_report_artifacts(paths)` turns `paths.tables` and
  `paths.artifact_markdown` into Prefect artifacts (this package never imports Prefect).

The report is built once as a list of blocks and rendered twice (Markdown and HTML), so both
always say the same thing. The HTML embeds the PNGs as data: URIs and inline CSS: it opens
offline, from anywhere, and references nothing outside itself.
"""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from storage.atomic import write_text
from storage.fs import Location, location, relative
from storage.rundir import RunDir
from tasks import statuses
from tasks.types import JUDGE_CASE_INSENSITIVE, JUDGE_DEFAULT, JUDGE_FLOAT_TOLERANCE, JUDGE_NONDETERMINISTIC, Problem
from tasks.reporting.bootstrap import CONFIDENCE, RESAMPLES, SEED, bootstrap_ci, per_problem_pass_at_k
from tasks.reporting.compare import compare_runs, difficulty_key
from tasks.metrics import pass_at_k
from tasks.dataset_check.subset import NOT_CHECKED
from tasks.reporting import plots
from tasks.reporting.rundata import RunData, load_run, write_problem_info
from tasks.reporting.summary import prompt_format_text

SLOWEST = 10
LIST_LIMIT = 50
JUDGE_NAMES = {
    JUDGE_NONDETERMINISTIC: "non-deterministic output (no checker; default rule)",
    JUDGE_CASE_INSENSITIVE: "case-insensitive tokens",
    JUDGE_FLOAT_TOLERANCE: "numeric tolerance 1e-6",
}


@dataclass
class ReportPaths:
    markdown: Location
    html: Location
    plots: dict[str, Location] = field(default_factory=dict)
    # Plain rows for Prefect table artifacts: pass_at_k, by_skill, verdicts, comparison (if any).
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Headline numbers: run_id, pass@k with intervals, comparison summary (or None).
    summary: dict[str, Any] = field(default_factory=dict)
    artifact_markdown: str = ""


# --- formatting ----------------------------------------------------------------------------------


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def pp(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:+.1f} pp"


def ci_text(low: float | None, high: float | None) -> str:
    return "–" if low is None or high is None else f"{100 * low:.1f} – {100 * high:.1f}%"


def ms_text(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


# --- the document model --------------------------------------------------------------------------


@dataclass
class Doc:
    blocks: list[tuple] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: Sequence[str]) -> None:
        if items:
            self.blocks.append(("ul", list(items)))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.blocks.append(("table", list(header), [[str(c) for c in r] for r in rows]))

    def img(self, path: Location, alt: str) -> None:
        self.blocks.append(("img", location(path), alt))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: Doc, base: Location, image_mode: str = "link") -> str:
    """`image_mode`: "link" (relative image links, for report.md) or "path" (absolute paths as
    text, for Prefect markdown artifacts, which cannot show local files)."""
    out: list[str] = []
    for block in doc.blocks:
        kind = block[0]
        if kind == "h":
            out += ["#" * block[1] + " " + block[2], ""]
        elif kind == "p":
            out += [block[1], ""]
        elif kind == "ul":
            out += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            header, rows = block[1], block[2]
            out.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            out.append("|" + "---|" * len(header))
            out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            out.append("")
        elif kind == "img":
            path, alt = block[1], block[2]
            if image_mode == "link":
                out += [f"![{alt}]({relative(path, base)})", ""]
            else:
                out += [f"Chart ({alt}): `{path.resolve()}`", ""]
    return "\n".join(out).rstrip() + "\n"


_INLINE_CODE = re.compile(r"`([^`]*)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline_html(text: str) -> str:
    parts = _INLINE_CODE.split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
        else:
            out.append(_BOLD.sub(r"<strong>\1</strong>", html.escape(part)))
    return "".join(out)


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #eee;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
tr:nth-child(even) td{background:#fafafa}
code{background:#f2f2f2;padding:0 .25em;border-radius:3px;font-size:.92em}
img{max-width:100%;border:1px solid #eee;margin:.4em 0 1em}
"""


def render_html(doc: Doc, title: str) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
    ]
    for block in doc.blocks:
        kind = block[0]
        if kind == "h":
            out.append(f"<h{block[1]}>{_inline_html(block[2])}</h{block[1]}>")
        elif kind == "p":
            out.append(f"<p>{_inline_html(block[1])}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in block[1])
            body = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in r) + "</tr>" for r in block[2])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(block[1].read_bytes()).decode("ascii")
            alt = html.escape(block[2])
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{alt}" title="{alt}"></figure>')
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# --- sections ------------------------------------------------------------------------------------


def _group_stats(
    counts: dict[int, tuple[int, int]], ids: list[int], ks: Sequence[int], *, resamples: int, seed: int
) -> dict[str, Any]:
    values: dict[int, float | None] = {}
    ci: dict[int, tuple[float, float]] = {}
    for k in ks:
        if not ids or any(counts[t][0] < k for t in ids):
            values[k] = None
            continue
        interval = bootstrap_ci(per_problem_pass_at_k(counts, k, ids), resamples=resamples, seed=seed)
        values[k] = interval.estimate
        ci[k] = (interval.low, interval.high)
    return {"problems": len(ids), "samples": sum(counts[t][0] for t in ids), "values": values, "ci": ci}


def _groups(
    run: RunData, counts: dict[int, tuple[int, int]], by: str, *, resamples: int, seed: int
) -> list[dict[str, Any]]:
    """Per-difficulty or per-skill groups: from per-problem metadata with intervals, else from
    metrics.json without."""
    ks = run.ks
    if run.problems is not None:
        members: dict[str, list[int]] = {}
        for t in sorted(counts):
            info = run.problems[t]
            names = [info.difficulty] if by == "difficulty" else (list(info.skills) or ["(none)"])
            for name in names:
                members.setdefault(name, []).append(t)
        groups = [
            {"name": name, **_group_stats(counts, ids, ks, resamples=resamples, seed=seed)}
            for name, ids in members.items()
        ]
    else:
        source = run.metrics.get("by_difficulty" if by == "difficulty" else "by_skill") or {}
        groups = [
            {
                "name": name,
                "problems": g.get("num_problems", 0),
                "samples": g.get("num_samples", 0),
                "values": {k: g.get(f"pass@{k}") for k in ks},
                "ci": {},
            }
            for name, g in source.items()
        ]
    if by == "difficulty":
        return sorted(groups, key=lambda g: difficulty_key(g["name"]))
    return sorted(groups, key=lambda g: (-g["problems"], g["name"]))


def _pass_table(groups: list[dict[str, Any]], ks: Sequence[int], label: str) -> tuple[list[str], list[list[str]]]:
    header = [label, "problems", "samples"]
    for k in ks:
        header += [f"pass@{k}", f"pass@{k} 95% CI"]
    rows = []
    for g in groups:
        row = [g["name"], g["problems"], g["samples"]]
        for k in ks:
            ci = g["ci"].get(k)
            row += [pct(g["values"].get(k)), ci_text(*ci) if ci else "–"]
        rows.append(row)
    return header, rows


def _artifact_rows(groups: list[dict[str, Any]], ks: Sequence[int], label: str) -> list[dict[str, Any]]:
    rows = []
    for g in groups:
        row: dict[str, Any] = {label: g["name"], "problems": g["problems"], "samples": g["samples"]}
        for k in ks:
            v, ci = g["values"].get(k), g["ci"].get(k)
            row[f"pass@{k}"] = None if v is None else round(v, 4)
            row[f"pass@{k} CI low"] = None if not ci else round(ci[0], 4)
            row[f"pass@{k} CI high"] = None if not ci else round(ci[1], 4)
        rows.append(row)
    return rows


def _slowest(run: RunData) -> list[dict[str, Any]]:
    per_task: dict[int, dict[str, Any]] = {}
    for r in run.results:
        if r.get("status") == statuses.SKIPPED:
            continue
        t = per_task.setdefault(
            r["task_id"],
            {
                "task_id": r["task_id"],
                "samples": 0,
                "total_ms": 0.0,
                "max_ms": 0.0,
                "timeouts": 0,
                "passed": 0,
                "tests": 0,
            },
        )
        ms = float(r.get("runtime_ms") or 0.0)
        t["samples"] += 1
        t["total_ms"] += ms
        t["max_ms"] = max(t["max_ms"], ms)
        t["timeouts"] += r.get("status") == statuses.TIMEOUT
        t["passed"] += bool(r.get("passed"))
        t["tests"] += int(r.get("tests_run") or 0)
    return sorted(per_task.values(), key=lambda t: (-t["total_ms"], t["task_id"]))[:SLOWEST]


def _problem_label(run: RunData, task_id: int) -> str:
    info = (run.problems or {}).get(task_id)
    if info is None:
        return f"task {task_id}"
    return f"task {task_id} (`{info.problem_id}`, {info.difficulty})"


def _mib(value: Any) -> str:
    return f"{value / 2**20:g} MiB" if isinstance(value, (int, float)) else str(value)


def _manifest_rows(run: RunData) -> list[list[str]]:
    m = run.manifest or {}
    cfg = m.get("config") or {}
    ds = cfg.get("dataset") or {}
    judge = cfg.get("judge") or {}
    env = m.get("environment") or {}
    dsm = m.get("dataset") or {}
    rows: list[list[str]] = [
        ["run id", f"`{run.run_id}`"],
        ["created", str(m.get("created"))],
        ["model", f"`{cfg.get('model')}`"],
        ["model revision", str(cfg.get("model_revision"))],
        [
            "backend / dtype / device",
            f"{cfg.get('backend')} / {cfg.get('torch_dtype')} / "
            f"{', '.join(cfg.get('devices') or []) or cfg.get('device')}",
        ],
        [
            "dataset",
            f"`{ds.get('source')}` split `{ds.get('split')}`, revision {dsm.get('revision') or ds.get('revision')}",
        ],
        ["dataset fingerprint", f"`{dsm.get('fingerprint')}`"],
        [
            "dataset filters",
            ", ".join(f"{k}={ds[k]}" for k in ("difficulties", "skills", "task_ids", "limit") if ds.get(k) is not None)
            or "none",
        ],
        ["special judges applied", str(dsm.get("special_judges_applied"))],
        [
            "sampling",
            f"n={cfg.get('n')}, temperature={cfg.get('temperature')}, top_p={cfg.get('top_p')}, "
            f"max_tokens={cfg.get('max_tokens')}, seed={cfg.get('seed')}, "
            f"batch size={cfg.get('batch_size')}",
        ],
        ["prompt format", prompt_format_text(cfg.get("prompt_format"), m.get("prompt_format"))],
        [
            "timeouts and limits",
            f"{judge.get('timeout_s')} s per test, {judge.get('memory_limit_mb')} MB memory, "
            f"output cap {_mib(judge.get('output_limit_bytes'))}, "
            f"{'stop at first failure' if judge.get('early_stop', True) else 'all tests'}",
        ],
        ["isolation level", _isolation_text(m.get("isolation") or judge.get("isolation"))],
        ["execution workers", str(cfg.get("workers") or "one per core")],
    ]
    shards = m.get("shards") or {}
    if shards:
        gen = [s.get("generation") or {} for s in shards.values() if isinstance(s, dict)]
        exe = [s.get("execution") or {} for s in shards.values() if isinstance(s, dict)]

        def total(items: list[dict[str, Any]], key: str) -> float:
            return sum(float(i.get(key) or 0) for i in items)

        gen_wall, tokens = total(gen, "wall_s"), total(gen, "tokens")
        exe_wall, tests = total(exe, "wall_s"), total(exe, "tests_run")
        batches = sorted({str(g["batch_size"]) for g in gen if g.get("batch_size") is not None})
        paths = sorted(
            {
                f"{g['generation_path']}"
                + (f" ({g['generation_path_reason']})" if g.get("generation_path_reason") else "")
                for g in gen
                if g.get("generation_path")
            }
        )
        peak_rss = max([float(i.get("peak_rss_mb") or 0) for i in exe + gen] or [0.0])
        peak_gpu = max([float(g.get("peak_gpu_memory_bytes") or 0) for g in gen] or [0.0])
        peak_worker = max([float(e.get("peak_worker_rss_mb") or 0) for e in exe] or [0.0])
        rows += [
            [
                "shards",
                f"{len(shards)} planned; completed {m.get('completed_shards')}; "
                f"failed {m.get('failed_shards') or 'none'}",
            ],
            [
                "generation",
                f"{gen_wall:.1f} s summed over shards, {tokens:.0f} tokens"
                + (f" ({tokens / gen_wall:.1f} tokens/s)" if gen_wall and tokens else "")
                + (f", batch size {', '.join(batches)}" if batches else ""),
            ],
            ["generation path", "; ".join(paths) or "not recorded"],
            [
                "execution",
                f"{exe_wall:.1f} s summed over shards, {tests:.0f} tests"
                + (f" ({tests / exe_wall:.0f} tests/s)" if exe_wall and tests else ""),
            ],
            [
                "peak memory",
                f"process {peak_rss:.0f} MB"
                + (f", execution worker {peak_worker:.0f} MB" if peak_worker else "")
                + (f", GPU {peak_gpu / 2**30:.2f} GiB" if peak_gpu else ""),
            ],
        ]
    pkgs = env.get("packages") or {}
    rows += [
        ["code version / git", f"{env.get('code_version')} / `{env.get('git_revision')}`"],
        ["python", str(env.get("python"))],
        ["packages", ", ".join(f"{k} {v}" for k, v in pkgs.items() if v) or "unknown"],
        ["CPU", f"{env.get('cpu_model')} ({env.get('cpu_count')} cores), host {env.get('hostname')}"],
    ]
    return rows


def _comparison_section(
    doc: Doc, cmp: dict[str, Any], current: RunData, baseline: RunData, plots_dir: Location, paths: ReportPaths
) -> None:
    doc.h(2, f"Compared with `{cmp['baseline_run_id']}`")
    ks = cmp["ks"]
    model = f"model `{cmp['baseline_model']}`" if cmp["baseline_model"] else "model unknown"
    doc.p(
        f"Baseline: run `{cmp['baseline_run_id']}`, {model} (`{cmp['baseline_dir']}`). "
        f"Deltas are this run − baseline, on the {cmp['common_problems']} problems both runs scored; "
        "pp = percentage points."
    )
    notes = []
    if cmp["only_in_current"] or cmp["only_in_baseline"]:
        notes.append(
            f"problem sets differ: {len(cmp['only_in_current'])} only in this run, "
            f"{len(cmp['only_in_baseline'])} only in the baseline (left out of the deltas)"
        )
    if not cmp["same_dataset"]:
        notes.append("the two runs' dataset fingerprints differ (or one is unknown)")
    doc.ul(notes)
    pb = cmp["paired_bootstrap"]
    if pb:
        verdict = "**larger than noise**" if pb["significant"] else "**within noise**"
        doc.p(
            f"pass@1 changed by **{pp(pb['delta'])}** ({pct(pb['baseline'])} → {pct(pb['current'])}); "
            f"paired bootstrap over {pb['problems']} problems ({pb['resamples']} resamples): "
            f"{int(100 * pb['confidence'])}% CI {100 * pb['low']:+.1f} … {100 * pb['high']:+.1f} pp, "
            f"p ≈ {pb['p_value']:.3f}: {verdict}."
        )
    rows_data = [cmp["overall"]] + cmp["by_difficulty"]
    header = ["group", "problems"] + [f"pass@{k}: baseline → this run (Δ)" for k in ks]
    rows = [
        [r["group"], r["problems"]]
        + [
            f"{pct(r[f'pass@{k}']['baseline'])} → {pct(r[f'pass@{k}']['current'])} ({pp(r[f'pass@{k}']['delta'])})"
            for k in ks
        ]
        for r in rows_data
    ]
    doc.table(header, rows)
    doc.p(f"Per-difficulty figures from {cmp['difficulty_source']}.")
    if ks and rows_data:
        path = plots.delta_chart(
            rows_data,
            ks,
            plots_dir / "compare_by_difficulty.png",
            title=f"Change in pass@k: run {cmp['current_run_id']} − baseline {cmp['baseline_run_id']}",
            overall_ci=(pb["low"], pb["high"]) if pb else None,
        )
        paths.plots["compare_by_difficulty"] = path
        doc.img(path, "change in pass@k by difficulty, percentage points")
    doc.p("A problem counts as solved when at least one of its samples passed.")
    for key, title in (("newly_solved", "Newly solved"), ("newly_failing", "Newly failing")):
        ids = cmp[key]
        doc.p(f"**{title}**: {len(ids)}" + (" —" if ids else "."))
        doc.ul(
            [_problem_label(current if key == "newly_solved" else baseline, t) for t in ids[:LIST_LIMIT]]
            + ([f"… and {len(ids) - LIST_LIMIT} more"] if len(ids) > LIST_LIMIT else [])
        )
    paths.tables["comparison"] = [
        {
            "group": r["group"],
            "problems": r["problems"],
            **{
                f"pass@{k} {part}": (None if r[f"pass@{k}"][part] is None else round(r[f"pass@{k}"][part], 4))
                for k in ks
                for part in ("baseline", "current", "delta")
            },
        }
        for r in rows_data
    ]


# --- the report ----------------------------------------------------------------------------------


def build_report(
    run_dir: str | os.PathLike | Location,
    compare_to: str | os.PathLike | Location | RunData | None = None,
    *,
    problems: Sequence[Problem] | None = None,
    dataset: str | None = None,
    split: str = "test",
    out_dir: str | os.PathLike | Location | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> ReportPaths:
    """Write report.md, report.html and plots/*.png for the run folder `run_dir` (into `out_dir`,
    default the run folder itself) and return their paths, table rows and headline numbers.

    `compare_to`: a baseline run folder (or loaded RunData). `problems` / `dataset`: where per-problem
    metadata comes from (see `tasks.reporting.rundata.load_run`). Raises `tasks.reporting.rundata.RunFolderError` for a
    folder that is not a scored run.
    """
    run = load_run(run_dir, problems=problems, dataset=dataset, split=split)
    if problems is not None and run.layout == "run":
        write_problem_info(run.root, problems)
    baseline = None
    if compare_to is not None:
        baseline = compare_to if isinstance(compare_to, RunData) else load_run(compare_to, dataset=dataset, split=split)
    out = location(out_dir) if out_dir is not None else run.root
    folder = RunDir(out)
    plots_dir = folder.plots
    paths = ReportPaths(markdown=folder.report, html=folder.report_html)
    counts = run.counts()
    ks = run.ks
    cfg = run.config
    ds = cfg.get("dataset") or {}

    doc = Doc()
    title = f"taco-eval report: run {run.run_id}"
    doc.h(1, f"taco-eval report: run `{run.run_id}`")
    facts = [
        f"model `{run.model}`" if run.model else "model unknown (no manifest)",
        f"dataset `{ds.get('source')}:{ds.get('split')}`" if ds else None,
        f"{run.metrics.get('num_problems')} problems, {run.metrics.get('num_samples')} samples"
        + (f" (n={cfg.get('n')} per problem)" if cfg.get("n") else ""),
        f"created {run.manifest.get('created')}" if run.manifest else None,
    ]
    doc.p(" · ".join(f for f in facts if f))
    doc.p(f"Run folder: `{run.root.resolve()}`")
    doc.ul(run.notes)

    # Headline: pass@k overall with a bootstrap interval over problems.
    doc.h(2, "pass@k overall")
    headline: dict[str, Any] = {}
    overall = _group_stats(counts, sorted(counts), ks, resamples=resamples, seed=seed)
    rows = []
    for k in ks:
        value = run.metrics.get(f"pass@{k}")
        ci = overall["ci"].get(k)
        headline[f"pass@{k}"] = {"value": value, "low": ci[0] if ci else None, "high": ci[1] if ci else None}
        rows.append([f"pass@{k}", f"**{pct(value)}**", ci_text(*ci) if ci else "–"])
    doc.table(["metric", "value", f"{int(100 * CONFIDENCE)}% CI"], rows)
    doc.p(
        f"Unbiased pass@k estimator (Chen et al. 2021) averaged over {len(counts)} problems; intervals are "
        f"percentile bootstrap over problems ({resamples} resamples, seed {seed})."
    )
    if not ks:
        doc.p("No pass@k value could be computed (fewer samples than the smallest k).")
    _verified_section(doc, run, paths)

    if baseline is not None:
        cmp = compare_runs(run, baseline, resamples=resamples, seed=seed)
        _comparison_section(doc, cmp, run, baseline, plots_dir, paths)
        paths.summary["comparison"] = {
            k: cmp[k]
            for k in (
                "baseline_run_id",
                "ks",
                "overall",
                "paired_bootstrap",
                "newly_solved",
                "newly_failing",
                "common_problems",
            )
        }

    # By difficulty (with overall as the first row), by skill.
    diff_groups = _groups(run, counts, "difficulty", resamples=resamples, seed=seed)
    overall_group = {"name": "overall", **overall, "values": {k: run.metrics.get(f"pass@{k}") for k in ks}}
    doc.h(2, "pass@k by difficulty")
    header, rows = _pass_table([overall_group] + diff_groups, ks, "difficulty")
    rows[0][0] = "**overall**"
    doc.table(header, rows)
    paths.tables["pass_at_k"] = _artifact_rows([overall_group] + diff_groups, ks, "group")
    if ks and diff_groups:
        paths.plots["pass_at_k_by_difficulty"] = plots.pass_at_k_chart(
            [overall_group] + diff_groups,
            ks,
            plots_dir / "pass_at_k_by_difficulty.png",
            title=f"pass@k by difficulty — run {run.run_id}",
            group_label="difficulty",
        )
        doc.img(paths.plots["pass_at_k_by_difficulty"], "pass@k by difficulty, % of problems")

    skill_groups = _groups(run, counts, "skill", resamples=resamples, seed=seed)
    doc.h(2, "pass@k by skill")
    if skill_groups:
        header, rows = _pass_table(skill_groups, ks, "skill")
        doc.table(header, rows)
        doc.p("A problem with several skills counts in each of them.")
        paths.tables["by_skill"] = _artifact_rows(skill_groups, ks, "skill")
        if ks:
            paths.plots["pass_at_k_by_skill"] = plots.pass_at_k_chart(
                skill_groups,
                ks,
                plots_dir / "pass_at_k_by_skill.png",
                title=f"pass@k by skill — run {run.run_id}",
                group_label="skill (problems)",
                horizontal=True,
            )
            doc.img(paths.plots["pass_at_k_by_skill"], "pass@k by skill, % of problems")
    else:
        doc.p("No skill information.")

    # Verdict mix.
    doc.h(2, "Verdicts")
    status_counts = {s: int(c) for s, c in (run.metrics.get("statuses") or {}).items()}
    total = sum(status_counts.values()) or 1
    doc.table(
        ["verdict", "samples", "share"],
        [[s.replace("_", " "), c, f"{100 * c / total:.1f}%"] for s, c in status_counts.items() if c],
    )
    paths.tables["verdicts"] = [
        {"verdict": s, "samples": c, "share": round(c / total, 4)} for s, c in status_counts.items() if c
    ]
    if any(status_counts.values()):
        paths.plots["verdicts"] = plots.verdict_chart(
            status_counts, plots_dir / "verdicts.png", title=f"Verdicts per sample — run {run.run_id}"
        )
        doc.img(paths.plots["verdicts"], "verdict mix, samples")

    # Slowest problems.
    doc.h(2, "Slowest problems")
    slow = _slowest(run)
    if slow:
        doc.table(
            ["problem", "samples", "total runtime", "slowest sample", "timeouts", "passed", "tests run"],
            [
                [
                    _problem_label(run, t["task_id"]),
                    t["samples"],
                    ms_text(t["total_ms"]),
                    ms_text(t["max_ms"]),
                    t["timeouts"],
                    t["passed"],
                    t["tests"],
                ]
                for t in slow
            ],
        )
        doc.p(
            "Runtime is the summed wall time of a sample's tests; verdicts from the cache carry the time of "
            "the run that judged them."
        )
    else:
        doc.p("No results.")

    _special_judges_section(doc, run, counts, ks)
    _skipped_section(doc, run)

    doc.h(2, "Run manifest")
    if run.manifest:
        doc.table(["field", "value"], _manifest_rows(run))
    else:
        doc.p(
            "No manifest.json: this is a flat `taco-eval evaluate` folder (model, sampling and environment "
            "are not recorded there)."
        )

    paths.summary.update(
        {
            "run_id": run.run_id,
            "model": run.model,
            "ks": ks,
            "headline": headline,
            "num_problems": run.metrics.get("num_problems"),
        }
    )
    plots_dir.mkdir(parents=True, exist_ok=True)
    write_text(paths.markdown, render_markdown(doc, out))
    write_text(paths.html, render_html(doc, title))
    paths.artifact_markdown = (
        render_markdown(doc, out, image_mode="path") + f"\nFull report with charts: `{paths.html.resolve()}`\n"
    )
    return paths


def _special_judges_section(doc: Doc, run: RunData, counts: dict[int, tuple[int, int]], ks: Sequence[int]) -> None:
    doc.h(2, "Problems with special judges")
    nd = run.metrics.get("nondeterministic_output") or {}
    if run.problems is not None:
        special = sorted(
            (t for t in counts if run.problems[t].judge != JUDGE_DEFAULT), key=lambda t: (run.problems[t].judge, t)
        )
    else:
        special = sorted(t for t in nd.get("task_ids") or [] if t in counts)
    if not special:
        doc.p("None of the scored problems uses a special judge.")
    else:
        by_judge: dict[str, list[int]] = {}
        for t in special:
            by_judge.setdefault(run.problems[t].judge if run.problems else JUDGE_NONDETERMINISTIC, []).append(t)
        k1 = 1 if 1 in ks else (ks[0] if ks else None)
        doc.table(
            ["judge", "problems", "samples", f"pass@{k1}" if k1 else "pass@k"],
            [
                [
                    JUDGE_NAMES.get(j, j),
                    len(ids),
                    sum(counts[t][0] for t in ids),
                    pct(sum(pass_at_k(*counts[t], k1) for t in ids) / len(ids)) if k1 else "n/a",
                ]
                for j, ids in by_judge.items()
            ],
        )
        doc.table(
            ["problem", "judge", "samples", "passed"],
            [
                [
                    _problem_label(run, t),
                    JUDGE_NAMES.get(run.problems[t].judge if run.problems else JUDGE_NONDETERMINISTIC, ""),
                    counts[t][0],
                    counts[t][1],
                ]
                for t in special[:LIST_LIMIT]
            ],
        )
    without = nd.get("metrics_without_them") or {}
    if nd.get("task_ids"):
        doc.p(
            f"Without the {len(nd['task_ids'])} non-deterministic-output problems (no checker exists; judged "
            "with the default rule): "
            + ", ".join(f"pass@{k} {pct(without.get(f'pass@{k}'))}" for k in ks if f"pass@{k}" in without)
            + "."
        )


EXCLUSION_NAMES = {
    statuses.BROKEN: "broken (no reference solution passes)",
    statuses.NO_SOLUTIONS: "no reference solutions",
    statuses.SKIPPED: "skipped by the check (malformed row or `solutions`)",
    NOT_CHECKED: "not in the dataset check",
}


def _verified_section(doc: Doc, run: RunData, paths: ReportPaths) -> None:
    """pass@k over the problems a dataset check finds usable (metrics.json's `verified` block)."""
    block = run.metrics.get("verified")
    if not block:
        return
    check = block.get("dataset_check") or {}
    ks = block.get("ks") or []
    doc.h(2, "pass@k over verified problems (dataset check)")
    scope = (
        "This run generated and scored only these problems (`--only-verified`)."
        if check.get("only_verified")
        else f"The numbers above (and `taco_metrics.json`) cover all {run.metrics.get('num_problems')} scored problems."
    )
    doc.p(
        f"Over the {block.get('num_problems')} scored problems whose own reference solutions pass their tests "
        f"(verified or partial in `{check.get('path')}`). {scope}"
    )
    groups = [("**overall**", block)] + sorted(
        (block.get("by_difficulty") or {}).items(), key=lambda item: difficulty_key(item[0])
    )
    doc.table(
        ["group", "problems", "samples"] + [f"pass@{k}" for k in ks],
        [
            [name, g.get("num_problems", 0), g.get("num_samples", 0)] + [pct(g.get(f"pass@{k}")) for k in ks]
            for name, g in groups
        ],
    )
    excluded = block.get("excluded_task_ids") or {}
    doc.p("**Left out**: " + ("none." if not excluded else ""))
    doc.ul(
        [
            f"{EXCLUSION_NAMES.get(reason, reason)}: {len(ids)} — tasks {', '.join(map(str, ids[:20]))}"
            + (" …" if len(ids) > 20 else "")
            for reason, ids in excluded.items()
        ]
    )
    paths.summary["verified"] = {f"pass@{k}": block.get(f"pass@{k}") for k in ks} | {
        "num_problems": block.get("num_problems"),
        "excluded": {reason: len(ids) for reason, ids in excluded.items()},
    }


def _skipped_section(doc: Doc, run: RunData) -> None:
    skipped = run.metrics.get("skipped_problems") or []
    without = run.metrics.get("problems_without_samples") or []
    unknown = run.metrics.get("unknown_task_ids") or []
    if not (skipped or without or unknown):
        return
    doc.h(2, "Problems not scored")
    doc.ul(
        [f"task {m['task_id']} (`{m.get('problem_id')}`): {m['reason']}" for m in skipped[:LIST_LIMIT]]
        + ([f"… and {len(skipped) - LIST_LIMIT} more malformed problems"] if len(skipped) > LIST_LIMIT else [])
        + ([f"{len(without)} loaded problems had no samples: {without[:20]}"] if without else [])
        + ([f"{len(unknown)} task ids in the results are not in the dataset: {unknown[:20]}"] if unknown else [])
    )


# --- helpers ---------------------------------------------------------------------------------------


def _isolation_text(isolation: Any) -> str:
    """The manifest holds `sandbox.describe(level)` (older runs: the level name alone)."""
    if not isinstance(isolation, dict):
        return str(isolation)
    on = [
        k.replace("_", " ")
        for k in ("seccomp_filter", "unprivileged_uid", "capabilities_dropped", "pids_cgroup")
        if isolation.get(k)
    ]
    extra = f"landlock ABI {isolation['landlock_abi']}" if isolation.get("landlock_abi") else None
    return ", ".join([str(isolation.get("level"))] + on + ([extra] if extra else []))
