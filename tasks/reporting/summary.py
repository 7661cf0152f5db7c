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
    verified = metrics.get("verified")
    if verified:
        left = ", ".join(f"{reason} {len(ids)}" for reason, ids in verified["excluded_task_ids"].items()) or "none"
        values = "".join(f", pass@{k} {_fmt(verified.get(f'pass@{k}'))}" for k in verified["ks"])
        lines.append(f"verified subset (dataset check): {verified['num_problems']} problems{values}; left out: {left}")
    if stats is not None:
        lines.append(
            f"judged {stats.programs} unique programs ({stats.programs_cached} from cache), "
            f"{stats.tests_run} tests in {stats.wall_s:.1f} s ({stats.tests_per_s:.0f} tests/s)"
        )
    return "\n".join(lines)
