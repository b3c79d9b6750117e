"""The HTML report and the sentences on what the grid taught, from synthetic leaderboard rows."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest

from core.diagnosis import diagnose
from sweeper.ranking import Row
from sweeper.report import build_report, summarize

EVIL = "<script>alert(1)</script>"
NAN = float("nan")


def _row(rank, label, train, dev, status="finished", seeds=None):
    d = diagnose(train, dev, 0.0)
    if seeds is None:  # as the leaderboard counts them: finished seeds
        seeds = 2 if status == "finished" else 0
    return Row(rank=rank, label=label, dev_error=dev, dev_error_std=0.01, train_error=train,
               n_params=41 if seeds else None, seeds=seeds, status=status,
               avoidable_bias=d.avoidable_bias, variance=d.variance, verdict=d.verdict,
               recipe=d.recipe, run_ids=("r",))


# keep_prob 1.0 overfits (variance 0.12 on both lambdas); 0.86 brings it down to 0.03.
GRID = [  # (keep_prob, lambda, train error, dev error, label)
    ("0.86", "0.7", 0.015, 0.045, "kp=0.86 lambda=0.7"),
    ("0.86", "0", 0.03, 0.06, EVIL),
    ("1.0", "0", 0.01, 0.13, "kp=1.0 lambda=0"),
    ("1.0", "0.7", 0.005, 0.125, "kp=1.0 lambda=0.7"),
]
ROWS = [_row(i + 1, label, train, dev) for i, (_, _, train, dev, label) in enumerate(GRID)]
ROWS.append(_row(None, "kp=1.0 lambda=9", float("nan"), float("nan"), status="failed"))
POINTS = [{"keep_prob": kp, "lambda": lam} for kp, lam, *_ in GRID]
POINTS.append({"keep_prob": "1.0", "lambda": "9"})
CURVES = {"kp=0.86 lambda=0.7": {"train_error": [(1, 0.3), (2, 0.1), (3, 0.015)],
                                 "dev_error": [(1, 0.3), (2, 0.1), (3, 0.045)]},
          EVIL: {"train_error": [(1, 0.4), (2, 0.03)], "dev_error": [(1, 0.4), (2, 0.06)]}}
ENSEMBLES = [
    {"name": "best single", "method": "single", "dev_error": 0.045, "test_error": 0.05,
     "curve": [], "members": [("kp=0.86 lambda=0.7", 1.0)]},
    {"name": "caruana", "method": "caruana", "dev_error": 0.03, "test_error": 0.04,
     "curve": [0.045, 0.035, 0.03, 0.03], "members": [("kp=0.86 lambda=0.7", 0.5), (EVIL, 0.5)]},
]


class _Balance(HTMLParser):
    """Checks that every opened element is closed in order (void elements aside)."""

    VOID: ClassVar[frozenset[str]] = frozenset({"img", "meta", "br"})

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def _page() -> str:
    summary = summarize(ROWS, POINTS, baseline_error=0.0)
    return build_report("circles <sweep>", ROWS, POINTS, CURVES, ENSEMBLES, summary)


SVG = "{http://www.w3.org/2000/svg}"


def _svgs(page: str) -> list[ET.Element]:
    """Every chart on the page, parsed as XML (a chart that is not well-formed fails here)."""
    return [ET.fromstring(chunk) for chunk in re.findall(r"<svg .*?</svg>", page, flags=re.S)]


def _chart(page: str, title: str) -> ET.Element:
    return next(svg for svg in _svgs(page) if svg.get("aria-label") == title)


def _tipped_dots(svg: ET.Element) -> dict[str, tuple[float, float]]:
    """Tooltip text -> (x, y) of every dot that has one."""
    return {c.find(SVG + "title").text: (float(c.get("cx")), float(c.get("cy")))
            for c in svg.iter(SVG + "circle") if c.find(SVG + "title") is not None}


def _texts(svg: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in svg.iter(SVG + "text")]


def test_the_report_is_one_balanced_html_page_with_four_inline_plots():
    page = _page()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    checker = _Balance()
    checker.feed(page)
    assert checker.errors == [] and checker.stack == []
    charts = _svgs(page)
    assert [c.get("aria-label") for c in charts] == [
        "Dev error along each grid axis", "Learning curves of the best trials",
        "Train error against dev error", "Ensemble size against dev error"]
    assert all(c.tag == SVG + "svg" and float(c.get("width")) > 0 for c in charts)


def test_each_dot_sits_where_its_trial_is_and_names_it():
    chart = _chart(_page(), "Train error against dev error")
    dots = _tipped_dots(chart)
    finished = [(label, train, dev) for _, _, train, dev, label in GRID]
    assert sorted(dots) == sorted(f"{label}: train {train:g}, dev {dev:g}" for label, train, dev in finished)
    xy = [dots[f"{label}: train {train:g}, dev {dev:g}"] for label, train, dev in finished]
    # Screen y grows downwards: a higher dev error is drawn higher up.
    by_dev = [p for _, p in sorted(zip([d for *_, d in finished], xy))]
    assert [y for _, y in by_dev] == sorted((y for _, y in by_dev), reverse=True)
    by_train = [p for _, p in sorted(zip([t for _, t, _ in finished], xy))]
    assert [x for x, _ in by_train] == sorted(x for x, _ in by_train)


def test_the_axis_chart_has_a_panel_per_axis_and_ticks_that_span_the_errors():
    chart = _chart(_page(), "Dev error along each grid axis")
    texts = _texts(chart)
    assert {"keep_prob", "lambda", "0.86", "1.0", "0.7", "mean ± std", "dev error"} <= set(texts)
    # y tick labels: right-aligned and upright (the slanted category labels are turned)
    ticks = [float(t.text) for t in chart.iter(SVG + "text")
             if t.get("text-anchor") == "end" and t.get("transform") is None]
    assert min(ticks) <= 0.045 and max(ticks) >= 0.13 and len(ticks) <= 7
    # one grey dot per finished row in each of the two panels, each named
    assert len([d for d in _tipped_dots(chart) if "dev error" in d]) == 4  # same tips in both panels


def test_the_tables_show_the_leaderboard_and_the_ensembles_against_the_best_single():
    page = _page()
    for text in ("kp=0.86 lambda=0.7", "0.045", "0.125", "high variance", "failed",
                 "caruana", "-0.015", "-0.010", "×0.5", "circles &lt;sweep&gt;"):
        assert text in page, text


def test_every_label_is_escaped():
    page = _page()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_summarize_states_the_variance_cut_and_the_best_value_per_axis():
    lines = summarize(ROWS, POINTS, baseline_error=0.0)
    assert "keep_prob=0.86 cut the mean variance from 0.12 (keep_prob=1.0) to 0.03." in lines
    assert "lambda: 0.7 gave the lowest mean dev error (0.085)." in lines
    assert "lambda made little difference to the mean variance." in lines
    assert ("keep_prob=1.0: mean dev error 0.128, mean variance 0.12, "
            "mean avoidable bias 0.007 over 2 grid points.") in lines
    assert "Most grid points (3 of 4) are diagnosed 'high variance'." in lines
    assert "1 grid point without a finished result left out." in lines
    assert not any("lambda=9" in line for line in lines)  # the failed row is skipped


def test_an_empty_sweep_still_gives_a_page_with_four_plots():
    page = build_report("empty", [], [], {}, [], summarize([], [], 0.0))
    charts = _svgs(page)
    assert len(charts) == 4
    assert "no finished trials" in _texts(charts[2]) and "no ensembles" in _texts(charts[3])
    assert "No grid point finished" in page


def test_the_report_needs_no_plotting_library():
    code = ("import sys, runpy; ns = runpy.run_path('tests/test_report.py'); ns['_page'](); "
            "assert not [m for m in sys.modules if m.startswith(('matplotlib', 'PIL'))]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_a_grid_value_too_long_to_fit_is_cut_and_kept_whole_in_its_tooltip():
    points = [dict(p, keep_prob=p["keep_prob"] * 100) for p in POINTS]
    page = build_report("long", ROWS, points, CURVES, ENSEMBLES, [])
    charts = _svgs(page)
    assert len(charts) == 4
    axis_chart = charts[0]
    long_value = "0.86" * 100
    cut = [t for t in _texts(axis_chart) if t.endswith("…") and long_value in t]
    assert len(cut) == 1  # the tooltip (its <title>) holds the whole value ...
    shown = [t.find(SVG + "title").tail for t in axis_chart.iter(SVG + "text")
             if t.find(SVG + "title") is not None]
    assert len(shown) == 2 and all(len(t) <= 24 and t.endswith("…") for t in shown)  # ... shown cut
    assert float(axis_chart.get("height")) < 600


def _lines(grid, baseline=0.0):
    """Summary sentences of (axis value, train, dev[, status, seeds]) rows on one axis ``axis``."""
    rows = [_row(i + 1, f"axis={v}", train, dev, *rest) for i, (v, train, dev, *rest) in enumerate(grid)]
    return summarize(rows, [{"axis": v} for v, *_ in grid], baseline_error=baseline)


def test_a_tie_for_the_lowest_dev_error_names_no_winner():
    lines = _lines([("2.0", 0.02, 0.1 + 0.2), ("8.0", 0.02, 0.3), ("0.3", 0.1, 0.4)])
    assert "axis: 2.0 and 8.0 tie for the lowest mean dev error (0.3)." in lines
    assert not any("gave the lowest" in line for line in lines)


def test_negative_variance_and_bias_count_as_none():
    # dev below train everywhere: no variance to cut, however the negative gaps differ
    lines = _lines([("0.3", 0.15, 0.017), ("2.0", 0.022, 0.0)])
    assert "axis made little difference to the mean variance." in lines
    # train below the baseline at one value, above it at the other: cut to 0, not below
    lines = _lines([("a", 0.02, 0.04), ("b", 0.09, 0.11)], baseline=0.05)
    assert "axis=a cut the mean avoidable bias from 0.04 (axis=b) to 0." in lines
    assert "axis made little difference to the mean variance." in lines


def test_an_underfitting_value_gets_no_credit_for_its_low_variance():
    lines = _lines([("[16, 8]", 0.04, 0.05), ("[4]", 0.422, 0.42)])
    assert not any("cut the mean variance" in line for line in lines)
    assert ("axis=[4] had the lowest mean variance (0) but a higher mean dev error (0.42 against "
            "0.05 at axis=[16, 8]), so no axis value cut the variance without raising the dev error."
            ) in lines
    # a value as good on dev with less variance does get the credit
    lines = _lines([("[16, 8]", 0.04, 0.07), ("[32]", 0.06, 0.065), ("[4]", 0.422, 0.42)])
    assert "axis=[32] cut the mean variance from 0.03 (axis=[16, 8]) to 0.005." in lines


def test_values_lost_to_divergence_are_named_instead_of_a_grid_without_axes():
    grid = [("0.01", 0.1, 0.12), ("50", NAN, NAN, "diverged"), ("5000", NAN, NAN, "diverged/failed")]
    rows = [_row(1, "a", 0.1, 0.12), _row(None, "b", NAN, NAN, "diverged"),
            _row(None, "c", NAN, NAN, "diverged/failed")]
    points = [{"learning_rate": v, "architecture": "[8]"} for v, *_ in grid]
    lines = summarize(rows, points, 0.0)
    assert "learning_rate: only 0.01 finished on every seed; 50 and 5000 diverged or failed." in lines
    assert "2 grid points without a finished result left out." in lines
    page = build_report("div", rows, points, {}, [], lines)
    assert "no grid axis has two values that finished on every seed" in _texts(
        _chart(page, "Dev error along each grid axis"))
    # A value some of whose seeds finished is left out too, and said so
    lines = _lines([("2.0", 0.02, 0.0), ("4.0", 0.024, 0.006),
                    ("8.0", 0.03, 0.0, "1/3 finished, 2 diverged", 1)])
    assert "axis: 8.0 diverged on some seeds, so the sentences above leave it out." in lines
    assert "axis: 2.0 gave the lowest mean dev error (0)." in lines
    assert "1 grid point with only some seeds finished left out." in lines



def test_the_leaderboard_table_shows_a_partial_point_s_status_and_no_params_where_none_finished():
    rows = [_row(1, "solid", 0.02, 0.05), _row(2, "lucky", 0.01, 0.02, "1/3 finished, 2 diverged", 1),
            _row(None, "lost", NAN, NAN, "timed_out")]
    page = build_report("t", rows, [{}] * 3, {}, [], [])
    cells = re.findall(r"<tr>(.*?)</tr>", page.split("<h2>Leaderboard</h2>")[1].split("</table>")[0])
    lucky = re.findall(r"<td[^>]*>(.*?)</td>", cells[2])  # cells[0] is the header
    lost = re.findall(r"<td[^>]*>(.*?)</td>", cells[3])
    assert lucky[6] == "1/3 finished, 2 diverged (fine)" and lucky[8] == "1"
    assert lost[6] == "timed_out" and lost[7] == "-"  # no parameter count without a finished seed


def test_the_best_single_line_is_the_shipped_single_model_not_the_rank_1_mean():
    ensembles = [dict(ENSEMBLES[0], dev_error=0.04), ENSEMBLES[1]]  # its best seed beat the mean
    page = build_report("t", ROWS, POINTS, CURVES, ensembles, [])
    chart = _chart(page, "Ensemble size against dev error")
    titles = [t.text for t in chart.iter(SVG + "title")]
    assert "best single (dev): 0.04" in titles and ROWS[0].dev_error == 0.045


def test_learning_curves_are_drawn_at_their_epochs_not_their_index():
    curves = {"thinned": {"train_error": [(1, 0.5), (200, 0.2), (400, 0.1)],
                          "dev_error": [(1, 0.5), (200, 0.25), (400, 0.15)]}}
    chart = _chart(build_report("t", ROWS, POINTS, curves, ENSEMBLES, []), "Learning curves of the best trials")
    (line, _) = [[float(xy.split(",")[0]) for xy in p.get("points").split()]
                 for p in chart.iter(SVG + "polyline")]
    assert (line[1] - line[0]) / (line[2] - line[0]) == pytest.approx(199 / 399, abs=0.01)
    assert "400" in _texts(chart)
