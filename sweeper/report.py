"""The sweep's report: one self-contained HTML page, and sentences on what the grid taught.

The plots are inline SVG written by :mod:`sweeper.svgplot`, so the page needs no image
files and no plotting library; hovering a point names its trial. Every piece of text on
the page goes through ``html.escape``.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .ranking import Row
from .svgplot import GREY, Panel, colour, render

LEADERBOARD_ROWS = 20
"""Rows of the leaderboard shown in the report."""
NOTABLE = 0.005
"""A change in mean error smaller than this is not worth a sentence."""
_VERDICT_COLOURS = {
    "fine": colour(2),
    "high bias": colour(1),
    "high variance": colour(0),
    "high bias and high variance": colour(3),
}
_ALT_AXES = "Dev error along each grid axis"
_ALT_CURVES = "Learning curves of the best trials"
_ALT_BIAS = "Train error against dev error"
_ALT_ENSEMBLES = "Ensemble size against dev error"
_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:70em}"
          "table{border-collapse:collapse;margin:1em 0}"
          "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
          "td.text,th.text{text-align:left}figure{margin:0}svg{max-width:100%;height:auto}")


# ---------------------------------------------------------------- grouping and numbers
def _finished(rows: Sequence[Row], points: Sequence[Mapping[str, str]],
              ) -> list[tuple[Row, Mapping[str, str]]]:
    """The rows with a finished, finite result, each with its grid point."""
    if len(points) != len(rows):
        raise ValueError(f"points must be parallel to rows: {len(points)} points, {len(rows)} rows")
    return [(r, p) for r, p in zip(rows, points) if r.status == "finished"
            and math.isfinite(r.dev_error) and math.isfinite(r.train_error)]


def _order(values: set[str]) -> list[str]:
    """Numbers in numeric order, anything else alphabetically."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def _axes(pairs: Sequence[tuple[Row, Mapping[str, str]]]) -> dict[str, dict[str, list[Row]]]:
    """Axis -> value -> rows, for every axis whose rows take more than one value."""
    keys = sorted({k for _, p in pairs for k in p})
    axes: dict[str, dict[str, list[Row]]] = {}
    for key in keys:
        groups: dict[str, list[Row]] = {}
        for row, point in pairs:
            if key in point:
                groups.setdefault(str(point[key]), []).append(row)
        if len(groups) > 1:
            axes[key] = {v: groups[v] for v in _order(set(groups))}
    return axes


def _num(x: float) -> str:
    """``0.12``, ``0.03``, ``0``: three decimals without trailing zeros."""
    text = f"{x:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _number(x: Any) -> float | None:
    """``x`` as a finite float, or ``None`` (labels, missing values, NaN)."""
    if isinstance(x, (bool, str)) or x is None:
        return None
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _fmt(x: Any) -> str:
    if isinstance(x, (float, np.floating)):
        return _num(float(x)) if math.isfinite(x) else "-"
    return "-" if x is None else str(x)


# ---------------------------------------------------------------- summary sentences
def _axis_sentences(axis: str, groups: Mapping[str, list[Row]], baseline: float) -> list[str]:
    stats = {v: (float(np.mean([r.dev_error for r in rs])),
                 float(np.mean([r.dev_error - r.train_error for r in rs])),
                 float(np.mean([r.train_error - baseline for r in rs])), len(rs))
             for v, rs in groups.items()}
    lines = [f"{axis}={v}: mean dev error {_num(d)}, mean variance {_num(var)}, "
             f"mean avoidable bias {_num(b)} over {n} grid point{'s' * (n != 1)}."
             for v, (d, var, b, n) in stats.items()]
    best = min(stats, key=lambda v: stats[v][0])
    lines.append(f"{axis}: {best} gave the lowest mean dev error ({_num(stats[best][0])}).")
    for index, name in ((1, "variance"), (2, "avoidable bias")):
        low = min(stats, key=lambda v: stats[v][index])
        high = max(stats, key=lambda v: stats[v][index])
        if stats[high][index] - stats[low][index] > NOTABLE:
            lines.append(f"{axis}={low} cut the mean {name} from {_num(stats[high][index])} "
                         f"({axis}={high}) to {_num(stats[low][index])}.")
        else:
            lines.append(f"{axis} made little difference to the mean {name}.")
    return lines


def summarize(rows: Sequence[Row], points: Sequence[Mapping[str, str]],
              baseline_error: float) -> list[str]:
    """Sentences on what the grid taught, axis by axis, and which diagnosis dominates.

    Args:
        rows: Leaderboard rows.
        points: Parallel to ``rows``: each row's grid point as axis -> value (strings).
        baseline_error: Human-level or Bayes error; avoidable bias is train minus it.

    Returns:
        Plain-text sentences; rows without a finished, finite result are left out.
    """
    pairs = _finished(rows, points)
    if not pairs:
        return ["No grid point finished, so the grid taught nothing yet."]
    lines = []
    for axis, groups in _axes(pairs).items():
        lines.extend(_axis_sentences(axis, groups, baseline_error))
    verdicts = Counter(r.verdict for r, _ in pairs if r.verdict)
    if verdicts:
        verdict, count = verdicts.most_common(1)[0]
        lines.append(f"Most grid points ({count} of {len(pairs)}) are diagnosed {verdict!r}.")
    if len(pairs) < len(rows):
        skipped = len(rows) - len(pairs)
        lines.append(f"{skipped} grid point{'s' * (skipped != 1)} without a finished result "
                     "left out.")
    return lines


# ---------------------------------------------------------------- plots
def _plot_axes(pairs: Sequence[tuple[Row, Mapping[str, str]]]) -> str:
    axes = _axes(pairs)
    if not axes:
        return render([Panel(note="no grid axis takes more than one value")], ylabel="",
                      alt=_ALT_AXES)
    panels = []
    for axis, groups in axes.items():
        panel = Panel(title=axis, xlabel="value", categories=list(groups))
        values = [[r.dev_error for r in rows] for rows in groups.values()]
        for x, (rows, ys) in enumerate(zip(groups.values(), values)):
            panel.points([x] * len(ys), ys, GREY, "a grid point", opacity=0.45,
                         tips=[f"{r.label}: dev error {_fmt(y)}" for r, y in zip(rows, ys)])
        panel.errorbar(range(len(values)), [float(np.mean(v)) for v in values],
                       [float(np.std(v)) for v in values], colour(0), "mean ± std")
        panels.append(panel)
    return render(panels, ylabel="dev error", alt=_ALT_AXES,
                  panel_width=max(200.0, min(420.0, 900.0 / len(panels))))


def _plot_curves(curves: Mapping[str, Mapping[str, Sequence[float]]]) -> str:
    if not curves:
        return render([Panel(note="no learning curves")], ylabel="", alt=_ALT_CURVES)
    panel = Panel(xlabel="epoch", integer_x=True)
    for i, (label, curve) in enumerate(curves.items()):
        for key, dash, name in (("train_error", "5,3", "train"), ("dev_error", "", "dev")):
            ys = list(curve.get(key, []))
            panel.line(range(1, len(ys) + 1), ys, colour(i), label if name == "dev" else "",
                       dash=dash, hollow=name == "train",
                       tips=[f"{label}, epoch {e}: {name} error {_fmt(y)}" for e, y in enumerate(ys, 1)])
    return render([panel], ylabel="error (dashed: train, solid: dev)", alt=_ALT_CURVES)


def _plot_bias_variance(pairs: Sequence[tuple[Row, Mapping[str, str]]]) -> str:
    if not pairs:
        return render([Panel(note="no finished trials")], ylabel="", alt=_ALT_BIAS)
    panel = Panel(xlabel="train error")
    for verdict in sorted({r.verdict for r, _ in pairs}):
        rs = [r for r, _ in pairs if r.verdict == verdict]
        panel.points([r.train_error for r in rs], [r.dev_error for r in rs],
                     _VERDICT_COLOURS.get(verdict, GREY), verdict or "-", radius=3.5,
                     tips=[f"{r.label}: train {_fmt(r.train_error)}, dev {_fmt(r.dev_error)}"
                           for r in rs])
    top = max(max(r.dev_error, r.train_error) for r, _ in pairs) * 1.05 or 1.0
    panel.line([0, top], [0, top], "#000000", "dev = train", dash="2,3")
    return render([panel], ylabel="dev error", alt=_ALT_BIAS, panel_width=360, panel_height=300)


def _plot_ensembles(ensembles: Sequence[Mapping[str, Any]], best_dev: float | None) -> str:
    drawn = [e for e in ensembles if len(e.get("curve") or []) > 0]
    if not drawn and best_dev is None:
        return render([Panel(note="no ensembles")], ylabel="", alt=_ALT_ENSEMBLES)
    panel = Panel(xlabel="ensemble size (picks)", integer_x=True)
    for i, e in enumerate(drawn):
        curve, name = [float(v) for v in e["curve"]], str(e.get("name", ""))
        panel.line(range(1, len(curve) + 1), curve, colour(i), name, markers=True,
                   tips=[f"{name}, {k} picks: dev error {_fmt(v)}" for k, v in enumerate(curve, 1)])
    if best_dev is not None:
        panel.hline(best_dev, "#000000", "best single (dev)")
    return render([panel], ylabel="dev error", alt=_ALT_ENSEMBLES)


# ---------------------------------------------------------------- HTML
def _table(header: Sequence[str], body: Sequence[Sequence[Any]], text_cols: set[int]) -> str:
    def cell(tag: str, i: int, value: Any) -> str:
        cls = ' class="text"' if i in text_cols else ""
        return f"<{tag}{cls}>{html.escape(_fmt(value))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    rows = ["<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in body]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _leaderboard(rows: Sequence[Row]) -> str:
    header = ("#", "dev error", "± std", "train error", "avoidable bias", "variance",
              "diagnosis", "params", "seeds", "trial")
    body = [(r.rank, r.dev_error, r.dev_error_std, r.train_error, r.avoidable_bias, r.variance,
             r.verdict if r.status == "finished" else r.status, r.n_params, r.seeds, r.label)
            for r in rows[:LEADERBOARD_ROWS]]
    more = len(rows) - LEADERBOARD_ROWS
    note = f"<p>{more} more grid points not shown.</p>" if more > 0 else ""
    return _table(header, body, {6, 9}) + note


def _ensemble_table(ensembles: Sequence[Mapping[str, Any]], best: Row | None) -> str:
    single = next((e for e in ensembles if e.get("method") == "single"), None)
    ref_dev = single["dev_error"] if single else (best.dev_error if best else None)
    ref_test = single.get("test_error") if single else None

    def delta(value: Any, ref: Any) -> str | None:
        a, b = _number(value), _number(ref)
        return None if a is None or b is None else f"{a - b:+.3f}"

    body = [(e.get("name"), e.get("method"), e.get("dev_error"), delta(e.get("dev_error"), ref_dev),
             e.get("test_error"), delta(e.get("test_error"), ref_test),
             ", ".join(f"{label} ×{_num(float(w))}" for label, w in e.get("members") or []))
            for e in ensembles]
    header = ("ensemble", "method", "dev error", "vs best single", "test error",
              "vs best single", "members (weight)")
    return _table(header, body, {0, 1, 6})


def build_report(title: str, rows: Sequence[Row], points: Sequence[Mapping[str, str]],
                 curves: Mapping[str, Mapping[str, Sequence[float]]],
                 ensembles: Sequence[Mapping[str, Any]], summary: Sequence[str]) -> str:
    """One self-contained HTML page: four plots, the leaderboard, ensembles and a summary.

    Args:
        title: Page title (the sweep's name).
        rows: The leaderboard, best first.
        points: Parallel to ``rows``: each row's grid point as axis -> value (strings).
        curves: Trial label -> ``{"train_error": [...], "dev_error": [...]}`` per epoch.
        ensembles: Dicts with ``name``, ``method``, ``dev_error``, ``test_error``,
            ``curve`` (dev error per pick, may be empty) and ``members`` ((label, weight)).
        summary: Sentences, such as :func:`summarize` writes.

    Returns:
        The HTML page; the plots are inline SVG, with a tooltip on every point.
    """
    pairs = _finished(rows, points)
    best = min((r for r, _ in pairs), key=lambda r: r.dev_error, default=None)
    plots = [
        (_ALT_AXES, _plot_axes(pairs)),
        (_ALT_CURVES, _plot_curves(curves)),
        (_ALT_BIAS, _plot_bias_variance(pairs)),
        (_ALT_ENSEMBLES, _plot_ensembles(ensembles, best.dev_error if best else None)),
    ]
    items = "".join(f"<li>{html.escape(line)}</li>" for line in summary)
    figures = "".join(f"<h2>{html.escape(t)}</h2><figure>{svg}</figure>" for t, svg in plots)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><h2>What the grid taught</h2><ul>{items}</ul>"
            f"<h2>Leaderboard</h2>{_leaderboard(rows)}"
            f"<h2>Ensembles against the best single model</h2>{_ensemble_table(ensembles, best)}"
            f"{figures}</body></html>\n")


__all__ = ["LEADERBOARD_ROWS", "NOTABLE", "build_report", "summarize"]
