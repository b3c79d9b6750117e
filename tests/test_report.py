"""The HTML report and the sentences on what the grid taught, from synthetic leaderboard rows."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

from core.diagnosis import diagnose
from sweeper.ranking import Row
from sweeper.report import build_report, summarize

EVIL = "<script>alert(1)</script>"


def _row(rank, label, train, dev, status="finished"):
    d = diagnose(train, dev, 0.0)
    return Row(rank=rank, label=label, dev_error=dev, dev_error_std=0.01, train_error=train,
               n_params=41, seeds=2, status=status, avoidable_bias=d.avoidable_bias,
               variance=d.variance, verdict=d.verdict, recipe=d.recipe, run_ids=("r",))


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
CURVES = {"kp=0.86 lambda=0.7": {"train_error": [0.3, 0.1, 0.015], "dev_error": [0.3, 0.1, 0.045]},
          EVIL: {"train_error": [0.4, 0.03], "dev_error": [0.4, 0.06]}}
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


def test_the_report_is_one_balanced_html_page_with_four_inline_plots():
    page = _page()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    checker = _Balance()
    checker.feed(page)
    assert checker.errors == [] and checker.stack == []
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for data in images)


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
    assert page.count("data:image/png;base64,") == 4
    assert "No grid point finished" in page


def test_no_pyplot_figure_is_left_open():
    import matplotlib.pyplot as plt

    _page()
    assert plt.get_fignums() == []


def test_a_grid_value_too_long_to_fit_still_gives_a_page_with_four_plots():
    points = [dict(p, keep_prob=p["keep_prob"] * 100) for p in POINTS]
    page = build_report("long", ROWS, points, CURVES, ENSEMBLES, [])
    assert page.count("data:image/png;base64,") == 4


def test_matplotlib_waits_for_preload_or_the_first_report():
    code = ("import sys, sweeper.report as report; assert 'matplotlib' not in sys.modules; "
            "report.preload(); assert 'matplotlib.backends.backend_agg' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_the_report_preload_runs_at_the_lowest_priority_and_leaves_the_process_alone():
    """The sweep imports matplotlib on a thread while trials run; on Linux that thread (and
    only it) is reniced, so on a machine whose cores all train it waits for idle time."""
    import os
    import threading

    from sweeper import report, sweep

    seen = {}
    real = report.preload

    def spy() -> None:
        seen["thread"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        real()

    before = os.getpriority(os.PRIO_PROCESS, 0)
    report.preload = spy
    try:
        thread = threading.Thread(target=sweep._preload_report)
        thread.start()
        thread.join()
    finally:
        report.preload = real
    assert os.getpriority(os.PRIO_PROCESS, 0) == before
    assert seen["thread"] == (19 if sys.platform.startswith("linux") else before)
