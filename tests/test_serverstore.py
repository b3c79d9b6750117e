"""sweeper's store for tracking servers (``sweeper:<database URI>``): the same runs as
MLflow's own SQL store writes, batch for batch, errors included; found by MLflow's
store registry through the installed entry point; sqlite in write-ahead-log mode."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from sweeper import storeplugin
from sweeper.newstore import seed_sqlite_store
from sweeper.serverstore import BatchSqlStore

T0 = 1_700_000_000_000


def sqlite_uri(path):
    """A new sqlite store's URI, the file copied from sweeper's template (no migrations to wait for)."""
    uri = f"sqlite:///{path}"
    seed_sqlite_store(uri)
    return uri


def stores(tmp_path):
    """MLflow's store and sweeper's, each on its own sqlite file."""
    mlflow_store = SqlAlchemyStore(sqlite_uri(tmp_path / "mlflow.db"), str(tmp_path / "a1"))
    ours = storeplugin.build("sweeper:" + sqlite_uri(tmp_path / "sweeper.db"), str(tmp_path / "a2"))
    return {"mlflow": mlflow_store, "sweeper": ours}


def new_run(store, name="r"):
    exp = store.create_experiment(f"e-{name}")
    return store.create_run(exp, user_id="u", start_time=T0, tags=[RunTag("kept", "yes")], run_name=name).info.run_id


def snapshot(store, run_id, keys):
    """What a reader sees of the run: latest metrics, params, tags and every history."""
    def value(v):
        return "nan" if isinstance(v, float) and math.isnan(v) else v

    data = store.get_run(run_id).data
    history = {
        k: sorted((m.step, m.timestamp, value(m.value)) for m in store.get_metric_history(run_id, k))
        for k in keys
    }
    latest = {k: value(v) for k, v in data.metrics.items()}
    tags = {k: v for k, v in data.tags.items() if not k.startswith("mlflow.")}
    return latest, dict(data.params), tags, history


def outcome(store, run_id, metrics=(), params=(), tags=()):
    """None, or the error's code and message with the run id taken out."""
    try:
        store.log_batch(run_id, list(metrics), list(params), list(tags))
    except MlflowException as exc:
        return exc.error_code, exc.message.replace(run_id, "RUN")
    return None


BATCHES = [
    # first batch: several keys and steps, NaN and infinities, a duplicate, params and tags
    dict(
        metrics=[Metric("loss", 1.0, T0, 0), Metric("loss", 0.5, T0 + 1, 1), Metric("loss", 0.5, T0 + 1, 1),
                 Metric("err", float("nan"), T0, 0), Metric("err", float("inf"), T0 + 5, 3),
                 Metric("low", 1.0, T0, 2), Metric("acc", 0.7, T0, 4), Metric("acc", 0.9, T0, 4),
                 Metric("order", 1.0, T0 + 10, 0), Metric("order", 2.0, T0, 1)],
        params=[Param("lr", "0.1"), Param("arch", "[8, 4]")],
        tags=[RunTag("phase", "train")],
    ),
    # later batches: an older step (latest stays), a newer step, a tie broken by timestamp,
    # a param again with the same value, a new param, a tag changed
    dict(metrics=[Metric("loss", 9.0, T0 + 9, 0), Metric("err", 0.25, T0 + 9, 7), Metric("low", 3.0, T0 + 1, 2),
                  Metric("new", 1.5, T0, 0), Metric("inf", float("-inf"), T0, 0), Metric("inf", float("inf"), T0, 1)],
         params=[Param("lr", "0.1"), Param("seed", "3")], tags=[RunTag("phase", "done")]),
    # a metric row the run has already: MLflow skips it and keeps the rest of the batch
    dict(metrics=[Metric("loss", 0.5, T0 + 1, 1), Metric("loss", 0.25, T0 + 20, 2)]),
    # only params, only tags, nothing at all
    dict(params=[Param("extra", "x")]),
    dict(tags=[RunTag("more", "y")]),
    dict(),
    # errors: a changed param (nothing of the batch is written), too many params, a bad value
    dict(metrics=[Metric("loss", 0.0, T0 + 30, 30)], params=[Param("lr", "0.2"), Param("other", "1")]),
    dict(params=[Param(f"p{i}", "v") for i in range(101)]),
    dict(metrics=[Metric("loss", "not a number", T0, 5)]),
    dict(params=[Param("dup", "1"), Param("dup", "2")]),
]


def test_batches_store_what_mlflows_own_store_stores(tmp_path, monkeypatch):
    both = stores(tmp_path)
    assert isinstance(both["sweeper"], BatchSqlStore)
    handed_over = []  # batches sweeper's store leaves to MLflow's log_batch
    mlflows = SqlAlchemyStore.log_batch

    def spy(self, run_id, metrics, params, tags):
        if isinstance(self, BatchSqlStore):
            handed_over.append(len(metrics))
        return mlflows(self, run_id, metrics, params, tags)

    monkeypatch.setattr(SqlAlchemyStore, "log_batch", spy)
    keys = ["loss", "err", "low", "acc", "new", "order", "inf"]
    runs = {name: new_run(store) for name, store in both.items()}
    for i, batch in enumerate(BATCHES):
        answers = {name: outcome(store, runs[name], **batch) for name, store in both.items()}
        assert answers["sweeper"] == answers["mlflow"], f"batch {i}"
        views = {name: snapshot(store, runs[name], keys) for name, store in both.items()}
        assert views["sweeper"] == views["mlflow"], f"after batch {i}"
    latest, params, tags, history = views["sweeper"]
    # the cases above did what they were written for
    assert handed_over == [2]  # only the batch with a row the run had already
    assert latest["loss"] == 0.25 and latest["err"] == 0.25 and latest["low"] == 3.0 and latest["acc"] == 0.9
    assert latest["order"] == 2.0 and latest["inf"] == 1.7976931348623157e308
    assert params == {"lr": "0.1", "arch": "[8, 4]", "seed": "3", "extra": "x"}
    assert tags == {"kept": "yes", "phase": "done", "more": "y"}
    assert len(history["loss"]) == 4 and history["err"][0] == (0, T0, "nan")
    assert [a for a in (outcome(s, runs[n], **BATCHES[6]) for n, s in both.items())][0][0] == "INVALID_PARAMETER_VALUE"


def test_a_batch_for_a_deleted_or_missing_run_fails_as_in_mlflow(tmp_path):
    both = stores(tmp_path)
    answers = {}
    for name, store in both.items():
        run_id = new_run(store)
        store.delete_run(run_id)
        answers[name] = (outcome(store, run_id, metrics=[Metric("m", 1.0, T0, 0)]),
                         outcome(store, "0" * 32, params=[Param("p", "1")]))
    assert answers["sweeper"] == answers["mlflow"]
    assert answers["sweeper"][0][0] == "INVALID_PARAMETER_VALUE"
    assert answers["sweeper"][1][0] == "RESOURCE_DOES_NOT_EXIST"


def test_the_registry_finds_the_store_and_sqlite_keeps_a_write_ahead_log(tmp_path):
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    db = tmp_path / "served.db"
    store = _tracking_store_registry.get_store("sweeper:" + sqlite_uri(db), str(tmp_path / "artifacts"))
    assert isinstance(store, BatchSqlStore)
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("uri", ["sweeper:", "sweeper:/srv/mlflow", "sweeper:http://host:5000", "sqlite:///x.db"])
def test_a_uri_that_is_not_sweeper_then_a_database_is_refused_with_the_form(uri):
    with pytest.raises(MlflowException) as refused:
        storeplugin.database_uri(uri)
    assert uri in refused.value.message and "sweeper:sqlite:///mlflow.db" in refused.value.message


def test_importing_mlflow_does_not_import_the_store():
    # MLflow loads every tracking-store entry point when it is imported, in every process
    code = "import sys, mlflow; assert 'sweeper.storeplugin' in sys.modules; print('sweeper.serverstore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_store_reads_from_the_replica_mlflow_server_was_given(tmp_path, monkeypatch):
    from mlflow.server.constants import READ_REPLICA_BACKEND_STORE_URI_ENV_VAR

    assert storeplugin.READ_REPLICA_ENV == READ_REPLICA_BACKEND_STORE_URI_ENV_VAR  # MLflow's name for it
    replica = sqlite_uri(tmp_path / "replica.db")
    monkeypatch.setenv(READ_REPLICA_BACKEND_STORE_URI_ENV_VAR, replica)
    store = storeplugin.build("sweeper:" + sqlite_uri(tmp_path / "primary.db"), str(tmp_path / "artifacts"))
    assert store.read_engine is not None and str(store.read_engine.url) == replica
    monkeypatch.delenv(READ_REPLICA_BACKEND_STORE_URI_ENV_VAR)
    assert storeplugin.build("sweeper:" + sqlite_uri(tmp_path / "other.db"), str(tmp_path / "a")).read_engine is None
