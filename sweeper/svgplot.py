"""Small charts written as inline SVG: scatter, lines, error bars and a reference line.

The report draws four charts. matplotlib drew them as PNGs in half a second, more than
the 64 trials of ``bench/sweep_throughput.py`` took together; writing the SVG text takes a
few milliseconds. SVG text stays text: sharp at any zoom, found by the browser's search,
and every point carries a tooltip (``<title>``) that names its trial.

A chart is a row of :class:`Panel` objects that share the y axis; :func:`render` lays
them out. Text widths are estimated from the character count (there is no font engine
here), so margins are generous rather than exact. Every string goes through
``html.escape``; non-finite values are left out.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
"""Ten colours that stay apart from one another (matplotlib's "tab10")."""
GREY = "#7f7f7f"
FONT = 12  # px
_CHAR = 0.6 * FONT  # a sans-serif character's advance, roughly: wide enough for digits
_TICKS = 6  # at most this many intervals between ticks
_TICK_LABEL = 24  # a category label longer than this is cut (whole in its tooltip)
_LEGEND_LABEL = 90  # trial labels name every grid axis: they are long
_GAP = 14  # px between the panels of a row
_SLANT = 30  # degrees the category labels are turned


def colour(i: int) -> str:
    """The ``i``-th colour of :data:`PALETTE`, cycling."""
    return PALETTE[i % len(PALETTE)]


def _text_width(text: str) -> float:
    return len(text) * _CHAR


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _e(text: object) -> str:
    return html.escape(str(text))


def _f(x: float) -> str:
    """A coordinate with one decimal at most: the SVG stays small."""
    s = f"{x:.1f}"
    return s[:-2] if s.endswith(".0") else s


def nice_ticks(lo: float, hi: float, most: int = _TICKS) -> list[float]:
    """Evenly spaced round numbers (steps of 1, 2, 2.5 or 5 times a power of ten) that
    cover ``[lo, hi]`` with at most ``most`` intervals; the first and last bound the axis."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    lo, hi = min(lo, hi), max(lo, hi)
    if hi - lo <= 1e-12 * max(1.0, abs(lo)):
        pad = abs(lo) * 0.1 or 0.5
        lo, hi = lo - pad, hi + pad
    magnitude = 10.0 ** math.floor(math.log10((hi - lo) / most))
    for m in (1, 2, 2.5, 5, 10, 20):  # the finest step whose aligned ticks are few enough
        step = m * magnitude
        first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
        if last - first <= most:
            break
    return [round((first + i) * step, 12) for i in range(last - first + 1)]


def tick_label(value: float, ticks: Sequence[float]) -> str:
    """``value`` with as many decimals as the ticks' step needs."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    power = math.floor(math.log10(step) + 1e-9)
    decimals = max(0, -power)
    if abs(step / 10**power - 2.5) < 1e-6:  # a step of 0.25 needs one more decimal than 0.2
        decimals += 1
    text = f"{value:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.00"


@dataclass
class _Mark:
    kind: str  # "points", "line", "errorbar" or "hline"
    xs: list[float]
    ys: list[float]
    colour: str
    label: str = ""
    errs: list[float] = field(default_factory=list)
    tips: list[str] = field(default_factory=list)
    dash: str = ""
    markers: bool = False
    hollow: bool = False
    opacity: float = 1.0
    radius: float = 3.0


@dataclass
class Panel:
    """One plot area: its marks, x axis and title. Values of ``None`` or NaN are skipped.

    Args:
        title: Written above the panel.
        xlabel: Written under the x axis.
        categories: Names the x positions 0, 1, ... (a categorical axis); else x is numeric.
        integer_x: A numeric x axis whose ticks are whole numbers.
        note: Written in place of the axes (nothing to show).
    """

    title: str = ""
    xlabel: str = ""
    categories: Sequence[str] | None = None
    integer_x: bool = False
    note: str = ""
    marks: list[_Mark] = field(default_factory=list)

    def points(self, xs: Iterable[float], ys: Iterable[float], colour: str, label: str = "", *,
               tips: Sequence[str] = (), opacity: float = 1.0, radius: float = 3.0) -> None:
        """A scatter of dots; ``tips[i]`` is the tooltip of point ``i``."""
        self.marks.append(_Mark("points", list(xs), list(ys), colour, label, tips=list(tips),
                                opacity=opacity, radius=radius))

    def line(self, xs: Iterable[float], ys: Iterable[float], colour: str, label: str = "", *,
             dash: str = "", markers: bool = False, hollow: bool = False,
             tips: Sequence[str] = ()) -> None:
        """A polyline; a line of one point is drawn as its marker."""
        self.marks.append(_Mark("line", list(xs), list(ys), colour, label, tips=list(tips),
                                dash=dash, markers=markers, hollow=hollow))

    def errorbar(self, xs: Iterable[float], ys: Iterable[float], errs: Iterable[float],
                 colour: str, label: str = "") -> None:
        """Means joined by a line, each with a bar of plus and minus ``errs`` and caps."""
        self.marks.append(_Mark("errorbar", list(xs), list(ys), colour, label, errs=list(errs),
                                markers=True))

    def hline(self, y: float, colour: str, label: str = "", *, dash: str = "2,3") -> None:
        """A horizontal line across the panel."""
        self.marks.append(_Mark("hline", [], [y], colour, label, dash=dash))

    def _x_values(self) -> list[float]:
        return [x for m in self.marks for x in m.xs if _ok(x)]

    def _y_values(self) -> list[float]:
        out = []
        for m in self.marks:
            for i, y in enumerate(m.ys):
                if not _ok(y) or (m.xs and not _ok(m.xs[i])):
                    continue
                e = m.errs[i] if i < len(m.errs) and _ok(m.errs[i]) else 0.0
                out += [y - e, y + e]
        return out


def _ok(v: object) -> bool:
    """A finite real number: Python's or NumPy's (``np.float32`` is not a ``float``)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _range(values: Sequence[float], floor_zero: bool) -> tuple[float, float]:
    """The data's range, padded by 4% so no dot sits on the frame (not below 0 for errors)."""
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.04 or abs(lo) * 0.1 or 1.0  # one value: a range around it
    lo_padded = lo - pad
    if floor_zero and lo >= 0 > lo_padded:
        lo_padded = 0.0
    return lo_padded, hi + pad


@dataclass
class _Box:
    left: float
    top: float
    width: float
    height: float

    def x(self, value: float, lo: float, hi: float) -> float:
        return self.left + (value - lo) / (hi - lo) * self.width

    def y(self, value: float, lo: float, hi: float) -> float:
        return self.top + self.height - (value - lo) / (hi - lo) * self.height


def _legend_items(panels: Sequence[Panel]) -> list[_Mark]:
    seen, out = set(), []
    for p in panels:
        for m in p.marks:
            if m.label and (m.label, m.kind, m.colour) not in seen:
                seen.add((m.label, m.kind, m.colour))
                out.append(m)
    return out


def render(panels: Sequence[Panel], *, ylabel: str, alt: str, panel_width: float = 420,
           panel_height: float = 260, floor_zero: bool = True) -> str:
    """One ``<svg>`` element: the panels side by side on a shared y axis, a legend below.

    Args:
        panels: At least one.
        ylabel: Written along the shared y axis.
        alt: The chart's accessible name (``<title>`` and ``aria-label``).
        panel_width, panel_height: Size of each plot area in px.
        floor_zero: Padding never takes a non-negative axis below zero (error rates).
    """
    drawn = [p for p in panels if not p.note]
    if not drawn:  # notes alone: a line of text, not an empty frame
        panel_height, ylabel = 2.0 * FONT, ""
    y_ticks = nice_ticks(*_range([y for p in drawn for y in p._y_values()], floor_zero))
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    y_labels = [tick_label(v, y_ticks) for v in y_ticks]
    left = 10 + (FONT + 8 if ylabel else 0) + max(_text_width(s) for s in y_labels) + 8
    top = 10 + (FONT + 8 if any(p.title for p in panels) else 0)
    slant = math.radians(_SLANT)
    under = 8.0 + FONT if drawn else 0.0  # tick labels
    for p in drawn:
        if p.categories:
            longest = max((_text_width(_cut(c, _TICK_LABEL)) for c in p.categories), default=0.0)
            under = max(under, 8 + longest * math.sin(slant) + FONT * math.cos(slant))
    under += FONT + 10 if any(p.xlabel for p in drawn) else 4
    width = left + len(panels) * panel_width + (len(panels) - 1) * _GAP + 16
    items = _legend_items(drawn)
    widest = max((_legend_entry(m.label) for m in items), default=0.0)
    width = max(width, left + widest + 10)  # a long label widens the chart, not cut short
    legend, legend_height = _legend(items, left, top + panel_height + under, width - left - 10)
    height = top + panel_height + under + legend_height + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" role="img" aria-label="{_e(alt)}" '
        f'font-family="sans-serif" font-size="{FONT}">',
        f"<title>{_e(alt)}</title>",
        f'<rect width="{_f(width)}" height="{_f(height)}" fill="white"/>',
    ]
    if ylabel and drawn:
        cy = top + panel_height / 2
        parts.append(f'<text transform="translate({_f(10 + FONT)},{_f(cy)}) rotate(-90)" '
                     f'text-anchor="middle">{_e(ylabel)}</text>')
    for i, p in enumerate(panels):
        box = _Box(left + i * (panel_width + _GAP), top, panel_width, panel_height)
        if p.title:
            parts.append(f'<text x="{_f(box.left + box.width / 2)}" y="{_f(top - 8)}" '
                         f'text-anchor="middle" font-weight="bold">{_e(p.title)}</text>')
        if p.note:
            parts.append(f'<text x="{_f(box.left + box.width / 2)}" '
                         f'y="{_f(box.top + box.height / 2)}" text-anchor="middle">{_e(p.note)}</text>')
            continue
        parts += _y_axis(box, y_ticks, y_labels if i == 0 or panels[i - 1].note else None)
        x_lo, x_hi, x_axis = _x_axis(p, box)
        parts += x_axis
        parts += _marks(p, box, (x_lo, x_hi), (y_lo, y_hi))
        parts.append(f'<rect x="{_f(box.left)}" y="{_f(box.top)}" width="{_f(box.width)}" '
                     f'height="{_f(box.height)}" fill="none" stroke="#333"/>')
        if p.xlabel:
            parts.append(f'<text x="{_f(box.left + box.width / 2)}" '
                         f'y="{_f(top + panel_height + under - 6)}" text-anchor="middle">'
                         f"{_e(p.xlabel)}</text>")
    parts += legend
    parts.append("</svg>")
    return "".join(parts)


def _y_axis(box: _Box, ticks: Sequence[float], labels: Sequence[str] | None) -> list[str]:
    out = []
    lo, hi = ticks[0], ticks[-1]
    for j, v in enumerate(ticks):
        y = _f(box.y(v, lo, hi))
        out.append(f'<line x1="{_f(box.left)}" x2="{_f(box.left + box.width)}" y1="{y}" y2="{y}" '
                   f'stroke="#e5e5e5"/>')
        out.append(f'<line x1="{_f(box.left - 4)}" x2="{_f(box.left)}" y1="{y}" y2="{y}" stroke="#333"/>')
        if labels is not None:
            out.append(f'<text x="{_f(box.left - 7)}" y="{y}" dy="0.35em" text-anchor="end">'
                       f"{_e(labels[j])}</text>")
    return out


def _x_axis(p: Panel, box: _Box) -> tuple[float, float, list[str]]:
    """The x range and the ticks with their labels."""
    out: list[str] = []
    base = box.top + box.height
    if p.categories is not None:
        n = max(len(p.categories), 1)
        lo, hi = -0.5, n - 0.5
        # Slanted labels side by side need about two text heights between them: with more
        # categories than fit, every k-th is named (each dot's tooltip still names its own).
        every = math.ceil(2 * FONT / (box.width / n))
        for j, name in enumerate(p.categories):
            x = box.x(j, lo, hi)
            out.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(base)}" y2="{_f(base + 4)}" stroke="#333"/>')
            if j % every:
                continue
            tip = f"<title>{_e(name)}</title>" if len(name) > _TICK_LABEL else ""
            out.append(f'<text transform="translate({_f(x)},{_f(base + 8)}) rotate(-{_SLANT})" '
                       f'text-anchor="end" dy="0.7em">{tip}{_e(_cut(name, _TICK_LABEL))}</text>')
        return lo, hi, out
    values = p._x_values()
    if p.integer_x and values:  # whole-number ticks inside the data's own range
        first, last = math.floor(min(values)), math.ceil(max(values))
        ticks = [t for t in nice_ticks(first, last) if t == int(t) and first <= t <= last] or [first]
        pad = max((last - first) * 0.04, 0.3)
        lo, hi = first - pad, last + pad
    else:
        ticks = nice_ticks(*_range(values, floor_zero=True))
        lo, hi = ticks[0], ticks[-1]
    for v in ticks:
        x = _f(box.x(v, lo, hi))
        out.append(f'<line x1="{x}" x2="{x}" y1="{_f(base)}" y2="{_f(base + 4)}" stroke="#333"/>')
        out.append(f'<text x="{x}" y="{_f(base + 8)}" dy="0.7em" text-anchor="middle">'
                   f"{_e(tick_label(v, ticks) if not p.integer_x else int(v))}</text>")
    return lo, hi, out


def _marks(p: Panel, box: _Box, xr: tuple[float, float], yr: tuple[float, float]) -> list[str]:
    out: list[str] = []
    for m in p.marks:
        if m.kind == "hline":
            if _ok(m.ys[0]):
                y = _f(box.y(m.ys[0], *yr))
                out.append(f'<line x1="{_f(box.left)}" x2="{_f(box.left + box.width)}" y1="{y}" '
                           f'y2="{y}" stroke="{m.colour}" stroke-width="1.5"{_dash(m.dash)}>'
                           f"<title>{_e(m.label)}: {_e(f'{m.ys[0]:.4g}')}</title></line>")
            continue
        keep = [i for i in range(len(m.ys)) if _ok(m.xs[i]) and _ok(m.ys[i])]
        xy = [(box.x(m.xs[i], *xr), box.y(m.ys[i], *yr)) for i in keep]
        tips = [m.tips[i] if i < len(m.tips) else "" for i in keep]
        if m.kind == "errorbar":
            for k, ((x, _), i) in enumerate(zip(xy, keep)):
                e = m.errs[i] if i < len(m.errs) and _ok(m.errs[i]) else 0.0
                y0, y1 = _f(box.y(m.ys[i] - e, *yr)), _f(box.y(m.ys[i] + e, *yr))
                out.append(f'<path d="M{_f(x)},{y0}V{y1}M{_f(x - 4)},{y0}h8M{_f(x - 4)},{y1}h8" '
                           f'stroke="{m.colour}" fill="none"/>')
                tips[k] = tips[k] or f"{m.ys[i]:.4g} ± {e:.3g}"
        if m.kind in ("line", "errorbar") and len(xy) > 1:
            points = " ".join(f"{_f(x)},{_f(y)}" for x, y in xy)
            out.append(f'<polyline points="{points}" fill="none" stroke="{m.colour}" '
                       f'stroke-width="1.5"{_dash(m.dash)}/>')
        if m.kind == "points" or m.markers or len(xy) == 1:
            fill = "white" if m.hollow else m.colour
            opacity = f' opacity="{m.opacity}"' if m.opacity < 1 else ""
            for (x, y), tip in zip(xy, tips):
                title = f"<title>{_e(tip)}</title>" if tip else ""
                out.append(f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(m.radius)}" fill="{fill}"'
                           f'{opacity} stroke="{m.colour}">{title}</circle>')
    return out


def _dash(dash: str) -> str:
    return f' stroke-dasharray="{dash}"' if dash else ""


def _legend_entry(label: str) -> float:
    """Width of a legend entry: its swatch, its (possibly cut) label and a gap."""
    return 30 + _text_width(_cut(label, _LEGEND_LABEL)) + 16


def _legend(items: Sequence[_Mark], left: float, top: float, width: float) -> tuple[list[str], float]:
    """The legend's entries flowed into rows under the chart; returns them and their height."""
    out: list[str] = []
    if not items:
        return out, 0.0
    row_height, x, y = FONT + 8, left, top + 4
    for m in items:
        text, entry = _cut(m.label, _LEGEND_LABEL), _legend_entry(m.label)
        if x > left and x + entry > left + width:
            x, y = left, y + row_height
        mid = y + row_height / 2
        if m.kind in ("line", "hline", "errorbar"):
            out.append(f'<line x1="{_f(x)}" x2="{_f(x + 24)}" y1="{_f(mid)}" y2="{_f(mid)}" '
                       f'stroke="{m.colour}" stroke-width="1.5"{_dash(m.dash)}/>')
        if m.kind in ("points", "errorbar") or m.markers:
            fill = "white" if m.hollow else m.colour
            out.append(f'<circle cx="{_f(x + 12)}" cy="{_f(mid)}" r="3" fill="{fill}" stroke="{m.colour}"/>')
        tip = f"<title>{_e(m.label)}</title>" if text != m.label else ""
        out.append(f'<text x="{_f(x + 30)}" y="{_f(mid)}" dy="0.35em">{tip}{_e(text)}</text>')
        x += entry
    return out, y + row_height - top + 4


__all__ = ["GREY", "PALETTE", "Panel", "colour", "nice_ticks", "render", "tick_label"]
