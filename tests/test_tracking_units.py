"""Pieces of tracking and progress that need no store."""

from __future__ import annotations

import io

from sweeper.progress import Progress
from sweeper.runcontent import thin_steps
from sweeper.trackinguri import resolve_tracking_uri


def test_short_histories_are_kept_whole():
    assert thin_steps(120) == list(range(120))


def test_long_histories_are_thinned_keeping_ends_and_best_epoch():
    steps = thin_steps(15000, keep=300, must=(4321,))
    assert steps[0] == 0 and steps[-1] == 14999
    assert 4321 in steps
    assert 300 <= len(steps) <= 301
    assert steps == sorted(set(steps))


def test_tracking_uri_defaults_to_local_sqlite(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None) == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert resolve_tracking_uri(None) == "http://127.0.0.1:5001"
    assert resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


def test_progress_line_shows_done_failed_running_and_time_left():
    out = io.StringIO()
    p = Progress(4, stream=out)
    p.set_running(2)
    p.result(True)
    p.result(False)
    line = p.line()
    assert "2/4 done" in line and "1 failed" in line and "2 running" in line and "left" in line
    assert out.getvalue().count("\n") >= 1
