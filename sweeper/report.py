"""The sweep's report: one self-contained HTML page, and sentences on what the grid taught.

The plots are inline SVG written by :mod:`sweeper.svgplot`, so the page needs no image
files and no plotting library; hovering a point names its trial. Every piece of text on
the page goes through ``html.escape``.
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .ranking import Row, diagnosis_text
from .svgplot import GREY, Panel, colour, render

LEADERBOARD_ROWS = 20
"""Rows of the leaderboard shown in the report."""
NOTABLE = 0.005
"""A change in mean error smaller than this is not worth a sentence."""
_DECIMALS = 12  # means of equal error counts differ in the last bit; they still tie
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
    """The rows whose every seed finished with a finite result, each with its grid point."""
    if len(points) != len(rows):
        raise ValueError(f"points must be parallel to rows: {len(points)} points, {len(rows)} rows")
    return [(r, p) for r, p in zip(rows, points) if r.status == "finished"
            and math.isfinite(r.dev_error) and math.isfinite(r.train_error)]


@dataclass
class _Lost:
    """An axis value none of whose grid points finished on every seed."""

    troubles: set[str]  # what the other seeds did: diverged, failed, ...
    partial: bool = False  # some of its seeds did finish


def _lost_values(rows: Sequence[Row], points: Sequence[Mapping[str, str]],
                 pairs: Sequence[tuple[Row, Mapping[str, str]]]) -> dict[str, dict[str, _Lost]]:
    """Axis -> value -> what happened, for the values no complete grid point has."""
    kept = {(k, str(v)) for _, p in pairs for k, v in p.items()}
    complete = {id(r) for r, _ in pairs}
    lost: dict[str, dict[str, _Lost]] = {}
    for row, point in zip(rows, points):
        if id(row) in complete:
            continue
        # The words of a status ("1/3 finished, 2 diverged", "diverged/failed") name them.
        troubles = {w.replace("_", " ") for w in re.findall(r"[a-z_]+", row.status)} - {"finished"}
        for key, value in point.items():
            if (key, str(value)) not in kept:
                entry = lost.setdefault(key, {}).setdefault(str(value), _Lost(set()))
                entry.troubles |= troubles
                entry.partial |= row.seeds > 0
    return {k: {v: lost[k][v] for v in _order(set(lost[k]))} for k in sorted(lost)}


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
@dataclass(frozen=True)
class _Stats:
    dev: float
    variance: float
    bias: float
    n: int


def _same(a: float, b: float) -> bool:
    return round(a, _DECIMALS) == round(b, _DECIMALS)


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _cut_sentence(axis: str, stats: Mapping[str, _Stats], name: str, fair_only: bool) -> str:
    """Which value cut the mean ``name`` (``"variance"`` or ``"avoidable bias"``) most.

    A negative variance (dev below train) or avoidable bias (train below the baseline) is
    none at all, so it counts as 0. With ``fair_only`` a cut counts only from a value whose
    mean dev error is no worse: an underfitting setting has little variance to show for it.
    """
    level = {v: max(0.0, s.variance if name == "variance" else s.bias) for v, s in stats.items()}
    high = max(level, key=level.__getitem__)
    if level[high] - min(level.values()) <= NOTABLE:
        return f"{axis} made little difference to the mean {name}."
    fair = {v: x for v, x in level.items()
            if not fair_only or round(stats[v].dev, _DECIMALS) <= round(stats[high].dev, _DECIMALS)}
    low = min(fair.values())
    if level[high] - low > NOTABLE:
        lows = [f"{axis}={v}" for v, x in fair.items() if _same(x, low)]
        return f"{_and(lows)} cut the mean {name} from {_num(level[high])} ({axis}={high}) to {_num(low)}."
    worse = min(level, key=level.__getitem__)
    return (f"{axis}={worse} had the lowest mean {name} ({_num(level[worse])}) but a higher mean dev "
            f"error ({_num(stats[worse].dev)} against {_num(stats[high].dev)} at {axis}={high}), "
            f"so no {axis} value cut the {name} without raising the dev error.")


def _axis_sentences(axis: str, groups: Mapping[str, list[Row]], baseline: float) -> list[str]:
    stats = {v: _Stats(float(np.mean([r.dev_error for r in rs])),
                       float(np.mean([r.dev_error - r.train_error for r in rs])),
                       float(np.mean([r.train_error - baseline for r in rs])), len(rs))
             for v, rs in groups.items()}
    lines = [f"{axis}={v}: mean dev error {_num(s.dev)}, mean variance {_num(s.variance)}, "
             f"mean avoidable bias {_num(s.bias)} over {s.n} grid point{'s' * (s.n != 1)}."
             for v, s in stats.items()]
    lowest = min(s.dev for s in stats.values())
    best = [v for v, s in stats.items() if _same(s.dev, lowest)]
    if len(best) == 1:
        lines.append(f"{axis}: {best[0]} gave the lowest mean dev error ({_num(lowest)}).")
    else:
        lines.append(f"{axis}: {_and(best)} tie for the lowest mean dev error ({_num(lowest)}).")
    lines.append(_cut_sentence(axis, stats, "variance", fair_only=True))
    lines.append(_cut_sentence(axis, stats, "avoidable bias", fair_only=False))
    return lines


def _lost_sentence(axis: str, kept: Sequence[str], lost: Mapping[str, _Lost]) -> str:
    """What became of the values of ``axis`` that no complete grid point has."""
    troubles = sorted(set().union(*(x.troubles for x in lost.values()))) or ["did not finish"]
    what = " or ".join(troubles) + (" on some seeds" if any(x.partial for x in lost.values()) else "")
    names = _and(list(lost))
    if len(kept) == 1:
        return f"{axis}: only {kept[0]} finished on every seed; {names} {what}."
    pronoun = "it" if len(lost) == 1 else "them"
    return f"{axis}: {names} {what}, so the sentences above leave {pronoun} out."


def summarize(rows: Sequence[Row], points: Sequence[Mapping[str, str]],
              baseline_error: float) -> list[str]:
    """Sentences on what the grid taught, axis by axis, and which diagnosis dominates.

    Args:
        rows: Leaderboard rows.
        points: Parallel to ``rows``: each row's grid point as axis -> value (strings).
        baseline_error: Human-level or Bayes error; avoidable bias is train minus it.

    Returns:
        Plain-text sentences. Only grid points whose every seed finished count; the values
        of an axis that none of those has are named with what their seeds did instead.
    """
    pairs = _finished(rows, points)
    if not pairs:
        some = " on every seed" if any(r.seeds for r in rows) else ""
        return [f"No grid point finished{some}, so the grid taught nothing yet."]
    axes, lost = _axes(pairs), _lost_values(rows, points, pairs)
    lines = []
    for axis in sorted(set(axes) | set(lost)):
        if axis in axes:
            lines.extend(_axis_sentences(axis, axes[axis], baseline_error))
        if axis in lost:
            kept = _order({str(p[axis]) for _, p in pairs if axis in p})
            lines.append(_lost_sentence(axis, kept, lost[axis]))
    verdicts = Counter(r.verdict for r, _ in pairs if r.verdict)
    if verdicts:
        verdict, count = verdicts.most_common(1)[0]
        lines.append(f"Most grid points ({count} of {len(pairs)}) are diagnosed {verdict!r}.")
    complete = {id(r) for r, _ in pairs}
    left = [r for r in rows if id(r) not in complete]
    partial = sum(1 for r in left if r.seeds and r.status != "finished")
    for n, why in ((len(left) - partial, "without a finished result"),
                   (partial, "with only some seeds finished")):
        if n:
            lines.append(f"{n} grid point{'s' * (n != 1)} {why} left out.")
    return lines


# ---------------------------------------------------------------- plots
def _plot_axes(pairs: Sequence[tuple[Row, Mapping[str, str]]], lost: bool) -> str:
    axes = _axes(pairs)
    if not axes:
        note = ("no grid axis has two values that finished on every seed" if lost
                else "no grid axis takes more than one value")
        return render([Panel(note=note)], ylabel="", alt=_ALT_AXES)
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


def _plot_curves(curves: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]]) -> str:
    if not curves:
        return render([Panel(note="no learning curves")], ylabel="", alt=_ALT_CURVES)
    panel = Panel(xlabel="epoch", integer_x=True)
    for i, (label, curve) in enumerate(curves.items()):
        for key, dash, name in (("train_error", "5,3", "train"), ("dev_error", "", "dev")):
            points = list(curve.get(key, []))
            panel.line([e for e, _ in points], [y for _, y in points], colour(i),
                       label if name == "dev" else "", dash=dash, hollow=name == "train",
                       tips=[f"{label}, epoch {e}: {name} error {_fmt(y)}" for e, y in points])
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
             diagnosis_text(r), r.n_params, r.seeds, r.label)
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
        curves: Trial label -> ``{"train_error": [(epoch, error), ...], "dev_error": [...]}``,
            epochs counted from 1 (a thinned history skips some).
        ensembles: Dicts with ``name``, ``method``, ``dev_error``, ``test_error``,
            ``curve`` (dev error per pick, may be empty) and ``members`` ((label, weight));
            the one of ``method`` ``"single"`` is the reference ("best single") line.
        summary: Sentences, such as :func:`summarize` writes.

    Returns:
        The HTML page; the plots are inline SVG, with a tooltip on every point.
    """
    pairs = _finished(rows, points)
    best = next((r for r in rows if r.rank == 1), None)
    # The line stands for the single model that was shipped and tested, as the table's
    # "vs best single" does; the rank-1 mean only where no single model was shipped.
    single = next((e for e in ensembles if e.get("method") == "single"), None)
    best_dev = _number(single.get("dev_error")) if single else (best.dev_error if best else None)
    plots = [
        (_ALT_AXES, _plot_axes(pairs, bool(_lost_values(rows, points, pairs)))),
        (_ALT_CURVES, _plot_curves(curves)),
        (_ALT_BIAS, _plot_bias_variance(pairs)),
        (_ALT_ENSEMBLES, _plot_ensembles(ensembles, best_dev)),
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
