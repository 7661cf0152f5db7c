"""Human-readable summaries of a scored run."""

from __future__ import annotations

from typing import Any


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def format_summary(metrics: dict[str, Any], stats: Any | None = None) -> str:
    ks = metrics["ks"]
    lines = []
    header = ["group", "problems", "samples"] + [f"pass@{k}" for k in ks]
    rows = [["overall", metrics["num_problems"], metrics["num_samples"]] + [metrics.get(f"pass@{k}") for k in ks]]
    for name, g in metrics["by_difficulty"].items():
        rows.append([name, g["num_problems"], g["num_samples"]] + [g.get(f"pass@{k}") for k in ks])
    widths = [max(len(_fmt(r[i])) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        lines.append("  ".join(_fmt(v).ljust(w) for v, w in zip(r, widths)))
    counts = {s: n for s, n in metrics["statuses"].items() if n}
    lines.append("verdicts: " + ", ".join(f"{s} {n}" for s, n in counts.items()))
    if metrics["skipped_problems"]:
        lines.append(f"skipped (malformed) problems: {len(metrics['skipped_problems'])}")
    if stats is not None:
        lines.append(
            f"judged {stats.programs} unique programs ({stats.programs_cached} from cache), "
            f"{stats.tests_run} tests in {stats.wall_s:.1f} s ({stats.tests_per_s:.0f} tests/s)"
        )
    return "\n".join(lines)


def pass_at_k_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows (overall, then each difficulty) for reports and Prefect table artifacts."""
    ks = metrics["ks"]
    groups = [("overall", metrics)] + list(metrics["by_difficulty"].items())
    return [{"group": name, "problems": g["num_problems"], "samples": g["num_samples"],
             **{f"pass@{k}": round(g[f"pass@{k}"], 4) for k in ks if f"pass@{k}" in g}} for name, g in groups]


def markdown_report(metrics: dict[str, Any], manifest: dict[str, Any], run_root: str) -> str:
    cfg = manifest.get("config", {})
    rows = pass_at_k_rows(metrics)
    cols = list(rows[0]) if rows else []
    lines = [
        f"# taco-eval run `{manifest.get('run_id', '?')}`",
        "",
        f"- model: `{cfg.get('model')}`; dataset: `{cfg.get('dataset', {}).get('source')}` "
        f"split `{cfg.get('dataset', {}).get('split')}`",
        f"- samples per problem: {cfg.get('n')}, temperature {cfg.get('temperature')}, top-p {cfg.get('top_p')}, "
        f"max tokens {cfg.get('max_tokens')}, seed {cfg.get('seed')}",
        f"- judge: {cfg.get('judge')}",
        f"- run folder: `{run_root}`",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    counts = {s: n for s, n in metrics["statuses"].items() if n}
    lines += ["", "Verdicts: " + ", ".join(f"{s} {n}" for s, n in counts.items())]
    if metrics["skipped_problems"]:
        lines += ["", f"Skipped (malformed) problems: {len(metrics['skipped_problems'])}"]
        lines += [f"- task {m['task_id']}: {m['reason']}" for m in metrics["skipped_problems"][:50]]
    return "\n".join(lines) + "\n"
