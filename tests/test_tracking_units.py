"""Pieces of tracking and progress that need no store."""

from __future__ import annotations

import io
import time

import pytest
from servers import free_port

from sweeper.progress import Progress
from sweeper.runcontent import thin_steps
from sweeper.trackinguri import (
    BadTrackingUri,
    DatabaseUnreachable,
    NoStore,
    check_reachable,
    check_store,
    check_tracking_uri,
    resolve_tracking_uri,
)


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


MLFLOW_OPENS = [
    "sqlite:///mlflow.db", "sqlite+pysqlite:////srv/sweeps/mlflow.db", "sqlite:///mlflow.db?timeout=30",
    "postgresql://mlflow:secret@db:5432/mlflow", "postgresql+psycopg://mlflow@db/mlflow",
    "mysql+pymysql://mlflow@db/mlflow", "mssql+pyodbc://mlflow@db/mlflow",
    "http://127.0.0.1:5000", "https://mlflow.example.com", "databricks", "databricks://profile",
]


@pytest.mark.parametrize("uri", MLFLOW_OPENS)
def test_tracking_uris_mlflow_opens_are_accepted(uri):
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    _tracking_store_registry.get_store_builder(uri)  # MLflow has a store for it
    check_tracking_uri(uri)


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("mlflow.db", "'mlflow.db' is not a tracking URI; for a local file use sqlite:///mlflow.db"),
        ("/srv/sweeps/mlflow.db", "for a local file use sqlite:////srv/sweeps/mlflow.db"),
        ("foo://bar", "MLflow has no tracking store for scheme 'foo'; use sqlite:///PATH"),
        ("postgres://u@db/mlflow", "scheme 'postgres' (did you mean postgresql://?)"),
        ("localhost:5000", "names no scheme; a tracking server is http://localhost:5000"),
        ("https://", "names no host"),
        ("file:///srv/mlruns", "maintenance mode"),
        ("sqlite://", "write sqlite:///PATH"),
        ("sqlite:///:memory:", "a store in memory"),
        ("postgresql:mlflow", "write postgresql://USER:PASSWORD@HOST:PORT/DATABASE"),
        ("sweeper:sqlite:///mlflow.db", "pass 'sqlite:///mlflow.db'"),
    ],
)
def test_tracking_uris_a_sweep_cannot_use_are_refused_with_what_to_write(uri, expected, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(BadTrackingUri) as err:
        check_tracking_uri(uri)
    assert expected in str(err.value)


def test_the_file_store_is_accepted_where_mlflow_allows_it(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    check_tracking_uri("file:///srv/mlruns")


def test_a_missing_store_is_refused_only_where_it_must_exist(tmp_path):
    missing = f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}"
    check_store(missing, must_exist=False)
    with pytest.raises(NoStore, match="no MLflow store at"):
        check_store(missing, must_exist=True)
    assert not (tmp_path / "none").exists()
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    for bad, expected in ((text, "is not an SQLite database"), (tmp_path, "is a folder")):
        with pytest.raises(NoStore, match=expected):
            check_store(f"sqlite:///{bad}", must_exist=False)
    check_store("postgresql://u@db/mlflow", must_exist=True)  # a database server's stores are not files


def test_a_database_server_that_does_not_answer_fails_fast():
    start = time.monotonic()
    with pytest.raises(DatabaseUnreachable, match=r"postgresql database at 127\.0\.0\.1"):
        check_reachable(f"postgresql+psycopg://mlflow@127.0.0.1:{free_port()}/mlflow")
    assert time.monotonic() - start < 5
    check_reachable("postgresql:///mlflow?host=/var/run/postgresql")  # a local socket: nothing to dial


def test_progress_line_shows_done_failed_running_and_time_left():
    out = io.StringIO()
    p = Progress(4, stream=out)
    p.set_running(2)
    p.result(True)
    p.result(False)
    line = p.line()
    assert "2/4 done" in line and "1 failed" in line and "2 running" in line and "left" in line
    assert out.getvalue().count("\n") >= 1
