"""The report's SVG charts: ticks, placement, skipped values, escaping and well-formed XML."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from sweeper.svgplot import Panel, nice_ticks, render, tick_label

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("seed", range(5))
def test_ticks_are_round_steps_that_cover_the_range_with_at_most_six_intervals(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        scale = 10.0 ** rng.integers(-4, 5)
        lo, hi = sorted(rng.uniform(-1, 1, size=2) * scale)
        ticks = nice_ticks(lo, hi)
        assert ticks[0] <= lo and ticks[-1] >= hi
        assert 2 <= len(ticks) <= 7
        steps = np.diff(ticks)
        assert np.allclose(steps, steps[0], rtol=1e-6)
        mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]) + 1e-9)
        assert any(abs(mantissa - m) < 1e-6 for m in (1, 2, 2.5, 5)), (lo, hi, ticks)
        labels = [tick_label(v, ticks) for v in ticks]
        assert len(set(labels)) == len(labels), labels  # enough decimals to tell them apart
        assert all(abs(float(s) - v) <= steps[0] / 10 for s, v in zip(labels, ticks))


def test_tick_labels_share_their_decimals_and_never_say_minus_zero():
    assert [tick_label(v, [0.0, 0.025, 0.05]) for v in (0.0, 0.025, 0.05)] == ["0.000", "0.025", "0.050"]
    assert tick_label(-1e-17, [-0.5, 0.0, 0.5]) == "0.0"
    assert [tick_label(v, [0, 20, 40]) for v in (0, 20, 40)] == ["0", "20", "40"]
    assert nice_ticks(0.3, 0.3)[0] < 0.3 < nice_ticks(0.3, 0.3)[-1]  # one value: a range around it


def _dots(svg: str) -> list[tuple[float, float, str]]:
    root = ET.fromstring(svg)
    out = []
    for c in root.iter(SVG + "circle"):
        title = c.find(SVG + "title")
        if title is not None:
            out.append((float(c.get("cx")), float(c.get("cy")), title.text))
    return out


def test_points_land_in_order_inside_the_frame_and_bad_values_are_skipped():
    panel = Panel(xlabel="x")
    xs = [0.0, 1.0, 2.0, float("nan"), 4.0, 5.0]
    ys = [0.5, 0.1, 0.9, 0.3, float("inf"), 0.2]
    panel.points(xs, ys, "#123456", "p", tips=[f"t{i}" for i in range(6)])
    svg = render([panel], ylabel="y", alt="chart", panel_width=300, panel_height=200)
    root = ET.fromstring(svg)
    frame = next(r for r in root.iter(SVG + "rect") if r.get("fill") == "none")
    x0, y0 = float(frame.get("x")), float(frame.get("y"))
    x1, y1 = x0 + float(frame.get("width")), y0 + float(frame.get("height"))
    dots = {tip: (x, y) for x, y, tip in _dots(svg)}
    assert sorted(dots) == ["t0", "t1", "t2", "t5"]  # NaN x and infinite y left out
    assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in dots.values())
    assert dots["t0"][0] < dots["t1"][0] < dots["t2"][0] < dots["t5"][0]
    assert dots["t2"][1] < dots["t0"][1] < dots["t5"][1] < dots["t1"][1]  # higher y, higher up
    # The positions are linear in the data: equal steps in x give equal steps on screen.
    assert dots["t1"][0] - dots["t0"][0] == pytest.approx(dots["t2"][0] - dots["t1"][0], abs=0.11)


def test_panels_in_a_row_share_one_y_scale():
    a, b = Panel(title="a", categories=["u", "v"]), Panel(title="b", categories=["u", "v"])
    a.points([0, 1], [0.1, 0.2], "#000", tips=["a0", "a1"])
    b.points([0, 1], [0.2, 0.8], "#000", tips=["b0", "b1"])
    dots = {tip: (x, y) for x, y, tip in _dots(render([a, b], ylabel="dev", alt="row"))}
    assert dots["a1"][1] == pytest.approx(dots["b0"][1])  # the same value at the same height
    assert dots["a0"][0] < dots["a1"][0] < dots["b0"][0] < dots["b1"][0]


def test_a_one_point_line_shows_its_marker_and_a_longer_line_is_a_polyline():
    one, many = Panel(integer_x=True), Panel(integer_x=True)
    one.line([1], [0.4], "#000", "one epoch", tips=["only"])
    many.line([1, 2, 3], [0.4, 0.2, 0.1], "#000", "three epochs")
    assert [tip for *_, tip in _dots(render([one], ylabel="", alt="one"))] == ["only"]
    root = ET.fromstring(render([many], ylabel="", alt="many"))
    (line,) = root.iter(SVG + "polyline")
    assert len(line.get("points").split()) == 3
    ticks = [t.text for t in root.iter(SVG + "text") if t.get("text-anchor") == "middle" and t.text]
    assert {"1", "2", "3"} <= set(ticks) and not any("." in t for t in ticks if t[0].isdigit())


def test_every_string_is_escaped_and_the_svg_is_well_formed():
    evil = '<script>alert("x")</script> & co'
    panel = Panel(title=evil, xlabel=evil, categories=[evil, "b"])
    panel.points([0, 1], [0.1, 0.2], "#000", evil, tips=[evil, evil])
    panel.hline(0.15, "#000", evil)
    svg = render([panel], ylabel=evil, alt=evil)
    assert "<script>" not in svg
    root = ET.fromstring(svg)
    assert root.get("aria-label") == evil
    assert evil in ["".join(t.itertext()) for t in root.iter(SVG + "text")]


def test_a_chart_with_nothing_to_draw_is_its_note_alone():
    root = ET.fromstring(render([Panel(note="no ensembles")], ylabel="dev error", alt="empty"))
    assert ["".join(t.itertext()) for t in root.iter(SVG + "text")] == ["no ensembles"]
    assert float(root.get("height")) < 60


def test_more_categories_than_fit_name_every_kth_and_keep_every_tick():
    names = [f"c{i}" for i in range(60)]
    panel = Panel(categories=names)
    panel.points(range(60), [i / 60 for i in range(60)], "#000", tips=names)
    root = ET.fromstring(render([panel], ylabel="", alt="many", panel_width=300))
    shown = [t.text for t in root.iter(SVG + "text") if (t.get("transform") or "").endswith("rotate(-30)")]
    assert shown[0] == "c0" and 60 // 5 <= len(shown) < 60  # 300 px fit about one in five
    step = names.index(shown[1])
    assert shown == names[::step]
    ticks = [ln for ln in root.iter(SVG + "line") if ln.get("x1") == ln.get("x2") and ln.get("stroke") == "#333"]
    assert len(ticks) == 60
    assert len(_dots(ET.tostring(root, encoding="unicode"))) == 60


def test_numpy_scalars_of_any_float_width_are_drawn():
    panel = Panel()
    panel.points(np.arange(3, dtype=np.int64), np.array([0.1, 0.2, 0.3], dtype=np.float32), "#000",
                 tips=["a", "b", "c"])
    assert [tip for *_, tip in _dots(render([panel], ylabel="", alt="np"))] == ["a", "b", "c"]


def test_a_long_legend_label_widens_the_chart_to_show_it_whole():
    label = "lambda=0.01 keep_prob=0.9 initializer=xavier architecture=[256, 128, 64]"
    short, long = Panel(), Panel()
    short.line([1, 2], [0.2, 0.1], "#000", "dev")
    long.line([1, 2], [0.2, 0.1], "#000", label)
    narrow = ET.fromstring(render([short], ylabel="", alt="a", panel_width=200))
    wide = ET.fromstring(render([long], ylabel="", alt="b", panel_width=200))
    assert label in ["".join(t.itertext()) for t in wide.iter(SVG + "text")]
    # 0.6 em a character, a 30 px swatch: room for the whole label inside the chart
    assert float(wide.get("width")) >= 0.6 * 12 * len(label) + 30 > float(narrow.get("width"))
