"""The sweep's report: one self-contained HTML page, and sentences on what the grid taught.

Plots are PNGs drawn on the Agg canvas and inlined as base64 ``<img>``. Figures are plain
``matplotlib.figure.Figure`` objects, never pyplot's, so no global backend is switched and
no figure outlives the call. matplotlib is imported on first use; :func:`preload` imports it
ahead of time. Every piece of text on the page goes through ``html.escape``.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .ranking import Row

LEADERBOARD_ROWS = 20
"""Rows of the leaderboard shown in the report."""
NOTABLE = 0.005
"""A change in mean error smaller than this is not worth a sentence."""
_DPI = 90
_PAD = 0.08  # inches between the labels and the figure's edge
_TICKS = 6  # at most this many intervals between ticks: each tick is several artists to draw
_VERDICT_COLOURS = {
    "fine": "tab:green",
    "high bias": "tab:orange",
    "high variance": "tab:blue",
    "high bias and high variance": "tab:red",
}
_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:70em}"
          "table{border-collapse:collapse;margin:1em 0}"
          "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
          "td.text,th.text{text-align:left}img{max-width:100%}")


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
def preload() -> None:
    """Imports the matplotlib pieces the plots use, so :func:`build_report` need not wait.

    Importing matplotlib takes a few tenths of a second; a sweep can call this on a
    background thread while its trials run.
    """
    _matplotlib()


def _matplotlib() -> tuple[Any, Any]:
    """matplotlib's ``Figure`` and Agg canvas classes, imported on first use."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return Figure, FigureCanvasAgg


def _subplots(width: float = 6.4, height: float = 4.0, ncols: int = 1, sharey: bool = False,
              ) -> tuple[Any, list[Any]]:
    """A figure on the Agg canvas and its row of axes; :func:`_png` fits the margins."""
    figure, canvas = _matplotlib()
    fig = figure(figsize=(width, height), dpi=_DPI)
    canvas(fig)  # the Agg canvas, whatever backend pyplot may be using elsewhere
    fig.subplots_adjust(wspace=0.08)  # a row of subplots shares y: no tick labels between
    axes = list(np.atleast_1d(fig.subplots(1, ncols, sharey=sharey)))
    for ax in axes:
        ax.locator_params(nbins=_TICKS)
    return fig, axes


def _fit(fig: Any) -> None:
    """Moves the subplots' outer edges so that their labels just fit in the figure.

    What a layout engine does, from the axes' labels alone: an engine costs a second drawing
    of the whole figure.
    """
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    boxes = [box for ax in fig.axes if ax.axison
             for box in (ax.bbox, ax.title.get_window_extent(renderer),
                         ax.xaxis.get_tightbbox(renderer), ax.yaxis.get_tightbbox(renderer))
             if box is not None]
    if not boxes:
        return
    used, pad = Bbox.union(boxes), _PAD * fig.dpi
    width, height, edges = fig.bbox.width, fig.bbox.height, fig.subplotpars
    left = edges.left + (pad - used.x0) / width
    right = edges.right - (used.x1 + pad - width) / width
    bottom = edges.bottom + (pad - used.y0) / height
    top = edges.top - (used.y1 + pad - height) / height
    if left < right and bottom < top:  # else labels too long to fit: let them overflow
        fig.subplots_adjust(left=left, right=right, bottom=bottom, top=top)


def _png(fig: Any) -> str:
    _fit(fig)
    buf = io.BytesIO()
    # Level 1 encodes in about three quarters of the default's time, for a tenth more bytes.
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": 1})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _plot_axes(pairs: Sequence[tuple[Row, Mapping[str, str]]]) -> str:
    axes = _axes(pairs)
    fig, subplots = _subplots(max(6.4, 3.2 * len(axes)), 3.6, max(len(axes), 1), sharey=True)
    if not axes:
        _note(subplots[0], "no grid axis takes more than one value")
        return _png(fig)
    for ax, (axis, groups) in zip(subplots, axes.items()):
        x = np.arange(len(groups))
        values = [[r.dev_error for r in rs] for rs in groups.values()]
        ax.scatter(np.repeat(x, [len(vs) for vs in values]), np.concatenate(values),
                   color="tab:gray", alpha=0.4, s=12)
        ax.errorbar(x, [np.mean(v) for v in values], yerr=[np.std(v) for v in values],
                    fmt="o-", color="tab:blue", capsize=4, label="mean ± std")
        ax.set_xticks(x, list(groups), rotation=30, ha="right")
        # A fixed place: the automatic one measures every tick label once more.
        ax.set_title(axis, y=1.0)
        ax.set_xlabel("value")
    subplots[0].set_ylabel("dev error")
    subplots[0].legend(loc="best", fontsize="small")
    return _png(fig)


def _plot_curves(curves: Mapping[str, Mapping[str, Sequence[float]]]) -> str:
    fig, (ax,) = _subplots()
    if not curves:
        _note(ax, "no learning curves")
        return _png(fig)
    for i, (label, curve) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        train, dev = curve.get("train_error", []), curve.get("dev_error", [])
        marker = "o" if max(len(train), len(dev)) == 1 else None  # a one-epoch line draws nothing
        ax.plot(train, "--", color=colour, marker=marker, fillstyle="none")
        ax.plot(dev, "-", color=colour, label=label, marker=marker)
    ax.set_xlabel("epoch")
    ax.set_ylabel("error (dashed: train, solid: dev)")
    ax.legend(loc="best", fontsize="x-small")
    return _png(fig)


def _plot_bias_variance(pairs: Sequence[tuple[Row, Mapping[str, str]]]) -> str:
    fig, (ax,) = _subplots(5.2, 4.4)
    if not pairs:
        _note(ax, "no finished trials")
        return _png(fig)
    for verdict in sorted({r.verdict for r, _ in pairs}):
        rs = [r for r, _ in pairs if r.verdict == verdict]
        ax.scatter([r.train_error for r in rs], [r.dev_error for r in rs], s=18,
                   color=_VERDICT_COLOURS.get(verdict, "tab:gray"), label=verdict or "-")
    top = max(max(r.dev_error, r.train_error) for r, _ in pairs) * 1.05 or 1.0
    ax.plot([0, top], [0, top], ":", color="black", label="dev = train")
    ax.set_xlabel("train error")
    ax.set_ylabel("dev error")
    ax.legend(loc="best", fontsize="small")
    return _png(fig)


def _plot_ensembles(ensembles: Sequence[Mapping[str, Any]], best_dev: float | None) -> str:
    fig, (ax,) = _subplots()
    drawn = [e for e in ensembles if len(e.get("curve") or []) > 0]
    for e in drawn:
        curve = list(e["curve"])
        ax.plot(range(1, len(curve) + 1), curve, "o-", ms=3, label=str(e.get("name", "")))
    if best_dev is not None:
        ax.axhline(best_dev, ls=":", color="black", label="best single (dev)")
    if not drawn and best_dev is None:
        _note(ax, "no ensembles")
        return _png(fig)
    ax.locator_params(axis="x", integer=True)
    ax.set_xlabel("ensemble size (picks)")
    ax.set_ylabel("dev error")
    ax.legend(loc="best", fontsize="small")
    return _png(fig)


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


def _img(data: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


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
        The HTML page; the plots are inlined as base64 PNG images.
    """
    pairs = _finished(rows, points)
    best = min((r for r, _ in pairs), key=lambda r: r.dev_error, default=None)
    plots = [
        ("Dev error along each grid axis", _plot_axes(pairs)),
        ("Learning curves of the best trials", _plot_curves(curves)),
        ("Train error against dev error", _plot_bias_variance(pairs)),
        ("Ensemble size against dev error",
         _plot_ensembles(ensembles, best.dev_error if best else None)),
    ]
    items = "".join(f"<li>{html.escape(line)}</li>" for line in summary)
    figures = "".join(f"<h2>{html.escape(t)}</h2>{_img(data, t)}" for t, data in plots)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><h2>What the grid taught</h2><ul>{items}</ul>"
            f"<h2>Leaderboard</h2>{_leaderboard(rows)}"
            f"<h2>Ensembles against the best single model</h2>{_ensemble_table(ensembles, best)}"
            f"{figures}</body></html>\n")


__all__ = ["LEADERBOARD_ROWS", "NOTABLE", "build_report", "preload", "summarize"]
