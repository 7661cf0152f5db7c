"""PNG charts of a run, a comparison and a history (matplotlib, Agg, no pyplot global state, so
charts can be drawn from the flow's worker threads). Every chart has a title, axis labels with units,
and value labels on the bars; files are written atomically.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from storage.atomic import atomic_path
from storage.fs import Location, location

K_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
STATUS_COLORS = {
    "passed": "#2ca02c",
    "wrong_answer": "#d62728",
    "timeout": "#ff7f0e",
    "runtime_error": "#9467bd",
    "compile_error": "#8c564b",
    "memory_limit": "#e377c2",
    "output_limit": "#7f7f7f",
    "sandbox_violation": "#17becf",
    "skipped": "#bcbd22",
}
DPI = 110


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike | Location) -> Location:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return location(path)


def pass_at_k_chart(
    groups: Sequence[dict[str, Any]],
    ks: Sequence[int],
    path: str | os.PathLike,
    *,
    title: str,
    group_label: str,
    horizontal: bool = False,
) -> Location:
    """Grouped bars of pass@k (%) per group, with the bootstrap interval as error bars when known.

    `groups`: dicts with `name`, `problems`, `values` ({k: fraction or None}) and optionally `ci`
    ({k: (low, high)}).
    """
    n, nk = len(groups), max(1, len(ks))
    width = 0.8 / nk
    if horizontal:
        fig = _figure(8.5, max(2.6, 0.42 * n * max(1, nk * 0.7) + 1.4))
    else:
        fig = _figure(max(6.5, 1.1 * n * max(1, nk * 0.6) + 2), 4.6)
    ax = fig.add_subplot()
    labels = [
        f"{g['name']}\n({g.get('problems', '?')} problems)"
        if not horizontal
        else f"{g['name']} ({g.get('problems', '?')})"
        for g in groups
    ]
    for j, k in enumerate(ks):
        pos = [i + (j - (nk - 1) / 2) * width for i in range(n)]
        vals = [100 * (g["values"].get(k) or 0.0) for g in groups]
        lows, highs = [], []
        for g, v in zip(groups, vals):
            ci = (g.get("ci") or {}).get(k)
            lows.append(v - 100 * ci[0] if ci else 0.0)
            highs.append(100 * ci[1] - v if ci else 0.0)
        has_ci = any(lows) or any(highs)
        err = [lows, highs] if has_ci else None
        color = K_COLORS[j % len(K_COLORS)]
        if horizontal:
            bars = ax.barh(pos, vals, height=width, xerr=err, capsize=3, color=color, label=f"pass@{k}")
        else:
            bars = ax.bar(pos, vals, width=width, yerr=err, capsize=3, color=color, label=f"pass@{k}")
        for bar, v, g, up in zip(bars, vals, groups, highs):
            text = "n/a" if g["values"].get(k) is None else f"{v:.1f}"
            # Label beyond the error bar's end so the two never overlap.
            if horizontal:
                ax.annotate(
                    text,
                    (v + up, bar.get_y() + bar.get_height() / 2),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                )
            else:
                ax.annotate(
                    text,
                    (bar.get_x() + bar.get_width() / 2, v + up),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    fontsize=8,
                )
    if horizontal:
        ax.set_yticks(range(n), labels)
        ax.invert_yaxis()
        ax.set_xlim(0, 112)
        ax.set_xticks(range(0, 101, 20))
        ax.set_xlabel("pass@k (% of problems, 95% bootstrap CI)")
        ax.set_ylabel(group_label)
        ax.grid(axis="x", alpha=0.3)
    else:
        ax.set_xticks(range(n), labels, fontsize=9)
        ax.set_ylim(0, 110)
        ax.set_yticks(range(0, 101, 20))
        ax.set_ylabel("pass@k (% of problems, 95% bootstrap CI)")
        ax.set_xlabel(group_label)
        ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title="metric", title_fontsize=8)
    return _save(fig, path)


def verdict_chart(counts: dict[str, int], path: str | os.PathLike, *, title: str) -> Location:
    """Horizontal bars: samples per verdict, with counts and shares."""
    items = [(s, c) for s, c in counts.items() if c]
    total = sum(c for _, c in items) or 1
    fig = _figure(7.5, max(2.2, 0.45 * len(items) + 1.3))
    ax = fig.add_subplot()
    names = [s.replace("_", " ") for s, _ in items]
    bars = ax.barh(range(len(items)), [c for _, c in items], color=[STATUS_COLORS.get(s, "#999999") for s, _ in items])
    for bar, (_, c) in zip(bars, items):
        ax.annotate(
            f"{c} ({100 * c / total:.1f}%)",
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(range(len(items)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, max([c for _, c in items] or [1]) * 1.25)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("samples (count)")
    ax.set_ylabel("verdict")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return _save(fig, path)


def delta_chart(
    rows: Sequence[dict[str, Any]],
    ks: Sequence[int],
    path: str | os.PathLike,
    *,
    title: str,
    overall_ci: tuple[float, float] | None = None,
) -> Location:
    """Bars of the change in pass@k (percentage points, current − baseline) per group; green edge for
    a gain, red for a loss. `overall_ci`: the paired-bootstrap interval of the first row's pass@1
    change (fractions), drawn as its error bar."""
    n, nk = len(rows), max(1, len(ks))
    width = 0.8 / nk
    fig = _figure(max(6.5, 1.1 * n * max(1, nk * 0.6) + 2.5), 4.4)
    ax = fig.add_subplot()
    extremes = [0.0]
    for j, k in enumerate(ks):
        pos = [i + (j - (nk - 1) / 2) * width for i in range(n)]
        deltas = [r[f"pass@{k}"]["delta"] for r in rows]
        vals = [100 * d if d is not None else 0.0 for d in deltas]
        err = None
        if overall_ci is not None and k == 1 and rows:
            lo, hi = 100 * overall_ci[0], 100 * overall_ci[1]
            err = [[max(0.0, vals[0] - lo)] + [0.0] * (n - 1), [max(0.0, hi - vals[0])] + [0.0] * (n - 1)]
            extremes += [lo, hi]
        bars = ax.bar(
            pos,
            vals,
            width=width,
            color=K_COLORS[j % len(K_COLORS)],
            label=f"pass@{k}",
            linewidth=1.8,
            edgecolor=["#1a7f1a" if v > 0 else "#c00000" if v < 0 else "#777777" for v in vals],
        )
        if err is not None:
            ax.errorbar(
                [pos[0]],
                [vals[0]],
                yerr=[[err[0][0]], [err[1][0]]],
                fmt="none",
                ecolor="black",
                capsize=4,
                linewidth=1.2,
            )
        extremes += vals
        for i, (bar, v, d) in enumerate(zip(bars, vals, deltas)):
            reach = 0.0
            if err is not None:
                reach = err[1][i] if v >= 0 else err[0][i]
            ax.annotate(
                "n/a" if d is None else f"{v:+.1f}",
                (bar.get_x() + bar.get_width() / 2, v + reach if v >= 0 else v - reach),
                xytext=(0, 3 if v >= 0 else -11),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(n), [f"{r['group']}\n({r['problems']} problems)" for r in rows], fontsize=9)
    low, high = min(extremes), max(extremes)
    pad = max(2.0, 0.15 * (high - low))
    ax.set_ylim(low - pad if low < 0 else -pad / 2, high + pad if high > 0 else pad / 2)
    ax.set_ylabel("change in pass@k (percentage points)")
    ax.set_xlabel(
        "difficulty"
        + ("  (error bar: 95% paired-bootstrap CI of the overall pass@1 change)" if overall_ci is not None else "")
    )
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title="metric", title_fontsize=8)
    return _save(fig, path)


def history_chart(
    series: dict[str, list[tuple[dt.datetime, dict[int, float]]]],
    ks: Sequence[int],
    path: str | os.PathLike,
    *,
    title: str,
) -> Location:
    """Lines of pass@k (%) over time: one colour per series (model), one line style per k."""
    styles = ("-", "--", ":", "-.")
    fig = _figure(9, 4.8)
    ax = fig.add_subplot()
    for i, (name, points) in enumerate(series.items()):
        color = K_COLORS[i % len(K_COLORS)]
        for j, k in enumerate(ks):
            pts = [(t, 100 * v[k]) for t, v in points if v.get(k) is not None]
            if not pts:
                continue
            ax.plot(
                [t for t, _ in pts],
                [v for _, v in pts],
                styles[j % len(styles)],
                marker="o",
                markersize=4,
                color=color,
                label=f"{name} pass@{k}" if len(series) > 1 else f"pass@{k}",
            )
    ax.set_ylim(0, 105)
    ax.set_ylabel("pass@k (% of problems)")
    ax.set_xlabel("run finished (UTC)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.autofmt_xdate()
    return _save(fig, path)
