"""The nightly trend: pass@k of indexed runs over time, as a table and a PNG line chart.

`write_history(output_root, model=None)` reads `<output_root>/run-index.jsonl` (see
`storage.run_index`), orders runs by `finished_at`, and writes `history.md` and `history.png`
(`history-<deployment>-<model>.*` when filtered by those) into the output root.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from storage.atomic import write_text
from storage.fs import Location, location
from storage.run_index import index_path, parse_time, read_index, select, sorted_by_time
from tasks import defaults
from tasks.reporting import plots


@dataclass
class HistoryPaths:
    markdown: Location
    png: Location | None
    rows: list[dict[str, Any]] = field(default_factory=list)  # table rows, oldest first


def history_entries(
    output_root: str | os.PathLike,
    *,
    model: str | None = None,
    deployment: str | None = None,
    dataset: str | None = None,
) -> list[dict[str, Any]]:
    """Indexed runs matching the filters, oldest first by `finished_at`."""
    return sorted_by_time(select(read_index(output_root), model=model, deployment=deployment, dataset=dataset))


def _series_name(entry: dict[str, Any]) -> str:
    return str(entry.get("model") or "unknown model")


def history_rows(entries: Sequence[dict[str, Any]], ks: Sequence[int] = defaults.HISTORY_KS) -> list[dict[str, Any]]:
    """One table row per run (oldest first) with pass@k and the change of the first k since the
    previous run of the same model."""
    rows: list[dict[str, Any]] = []
    last: dict[str, float] = {}
    for e in entries:
        values = e.get("pass_at_k") or {}
        row: dict[str, Any] = {
            "finished_at": e.get("finished_at"),
            "run_id": e.get("run_id"),
            "model": e.get("model"),
            "deployment": e.get("deployment"),
            "dataset": e.get("dataset"),
            "problems": e.get("num_problems"),
        }
        for k in ks:
            v = values.get(f"pass@{k}")
            row[f"pass@{k}"] = None if v is None else round(v, 4)
        if ks:
            key, first = _series_name(e), values.get(f"pass@{ks[0]}")
            prev = last.get(key)
            row[f"Δ pass@{ks[0]}"] = None if first is None or prev is None else round(first - prev, 4)
            if first is not None:
                last[key] = first
        rows.append(row)
    return rows


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _pp(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:+.1f} pp"


def format_history(rows: Sequence[dict[str, Any]], ks: Sequence[int] = defaults.HISTORY_KS) -> list[list[str]]:
    """Rows as display strings: header first."""
    header = ["finished (UTC)", "run", "model", "deployment", "problems"] + [f"pass@{k}" for k in ks]
    if ks:
        header.append(f"Δ pass@{ks[0]}")
    out = [header]
    for r in rows:
        line = [
            str(r["finished_at"]),
            str(r["run_id"]),
            str(r["model"]),
            str(r["deployment"] or "–"),
            str(r["problems"] if r["problems"] is not None else "–"),
        ] + [_pct(r[f"pass@{k}"]) for k in ks]
        if ks:
            line.append(_pp(r[f"Δ pass@{ks[0]}"]))
        out.append(line)
    return out


def text_table(table: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "model"


def write_history(
    output_root: str | os.PathLike,
    *,
    model: str | None = None,
    deployment: str | None = None,
    dataset: str | None = None,
    ks: Sequence[int] = defaults.HISTORY_KS,
    last: int | None = None,
    out_dir: str | os.PathLike | None = None,
) -> HistoryPaths:
    """Write the trend table (history.md) and line chart (history.png) of the indexed runs."""
    entries = history_entries(output_root, model=model, deployment=deployment, dataset=dataset)
    rows = history_rows(entries, ks)
    if last is not None:
        entries, rows = entries[-last:], rows[-last:]
    out = location(out_dir) if out_dir is not None else location(output_root)
    stem = "-".join(["history"] + [_slug(v) for v in (deployment, model) if v is not None])
    table = format_history(rows, ks)
    filters = ", ".join(
        f"{k} `{v}`" for k, v in (("model", model), ("deployment", deployment), ("dataset", dataset)) if v is not None
    )
    lines = [
        f"# taco-eval history{': ' + filters if filters else ''}",
        "",
        f"{len(rows)} finished runs from `{index_path(location(output_root).resolve())}`, oldest first.",
        "",
    ]
    png = None
    if entries:
        series: dict[str, list] = {}
        for e in entries:
            values = e.get("pass_at_k") or {}
            series.setdefault(_series_name(e), []).append(
                (parse_time(e.get("finished_at")), {k: values.get(f"pass@{k}") for k in ks})
            )
        png = plots.history_chart(
            series, ks, out / f"{stem}.png", title="pass@k over time" + (f" — {model}" if model else "")
        )
        lines += [f"![pass@k over time]({png.name})", ""]
        lines.append("| " + " | ".join(table[0]) + " |")
        lines.append("|" + "---|" * len(table[0]))
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in table[1:]]
    else:
        lines.append("No finished runs match.")
    md = out / f"{stem}.md"
    write_text(md, "\n".join(lines) + "\n")
    return HistoryPaths(md, png, rows)
