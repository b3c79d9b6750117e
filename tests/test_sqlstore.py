"""Runs written many per transaction read back exactly like runs written through MLflow's client."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
from mlflow import MlflowClient

from sweeper.results import run_trial
from sweeper.spec import parse_spec
from sweeper.reststore import RestRunWriter, block_absent
from sweeper.sqlstore import SqlRunWriter
from sweeper.sweep import plan
from sweeper.tracking import Tracker

GRID = """\
name: sqlstore
seed: 3
dataset: {name: moons, n_samples: 300, noise: 0.2}
grid: {lambda: [0, 0.1, 1.0]}
fixed: {architecture: [8], epochs: 30, batch_size: 64}
"""


@pytest.fixture(scope="module")
def results():
    the_plan = plan(parse_spec(GRID, "sqlstore.yaml"))
    data = the_plan.data[(True, "float32")].without_test()
    out = [run_trial(t, data) for t in the_plan.trials]
    assert [r.status for r in out] == ["finished"] * 3
    return out


def _public_only(tracker: Tracker) -> Tracker:
    tracker._sql = tracker._rest = None  # what a store without a fast path gets: MLflow's public client
    return tracker


def _read(client: MlflowClient, run_id: str, tmp_path) -> dict:
    run = client.get_run(run_id)
    info = run.info
    history = {k: [(m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, k)]
               for k in run.data.metrics}
    folder = tmp_path / run_id
    folder.mkdir()
    with np.load(client.download_artifacts(run_id, "weights.npz", str(folder)), allow_pickle=False) as npz:
        weights = {k: npz[k].tolist() for k in npz.files}
    csv_path = client.download_artifacts(run_id, "history.csv", str(folder))
    tags = {k: v for k, v in run.data.tags.items() if k not in ("mlflow.parentRunId", "sweeper.sweep")}
    return {
        "info": (info.status, info.start_time, info.end_time, info.lifecycle_stage, info.user_id, info.run_name),
        "artifact_uri_ends": info.artifact_uri.endswith(f"/{run_id}/artifacts"),
        "params": run.data.params,
        "metrics": run.data.metrics,
        "tags": tags,
        "history": history,
        "artifacts": [a.path for a in client.list_artifacts(run_id)],
        "weights": weights,
        "history.csv": open(csv_path).read(),
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_store(request, tmp_path):
    """A sqlite file, or a database on a throwaway PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mlflow.db'}"
    host, port, user, password, db = request.getfixturevalue("postgres")
    request.getfixturevalue("monkeypatch").setenv("PGPASSWORD", password)
    return f"postgresql+psycopg://{user}@{host}:{port}/{db}"


def test_bulk_runs_read_back_like_client_runs(sql_store, results, tmp_path):
    bulk = Tracker(sql_store, "bulk")
    public = _public_only(Tracker(sql_store, "public"))
    assert isinstance(bulk._sql, SqlRunWriter)
    parents = [t.client.create_run(t.experiment_id).info.run_id for t in (bulk, public)]
    bulk_ids = bulk.log_trials(parents[0], results)
    public_ids = public.log_trials(parents[1], results)
    assert all(isinstance(i, str) for i in bulk_ids + public_ids), (bulk_ids, public_ids)

    client = MlflowClient(sql_store)
    for b, p in zip(bulk_ids, public_ids):
        got, want = _read(client, b, tmp_path), _read(client, p, tmp_path)
        assert got == want
        assert got["info"][0] == "FINISHED" and got["artifact_uri_ends"]
        assert len(got["history"]["cost"]) == 30
    # Searches, nesting and the ranking's view see them alike.
    for t, parent in zip((bulk, public), parents):
        kids = client.search_runs([t.experiment_id], f"tags.mlflow.parentRunId = '{parent}' and metrics.dev_error >= 0")
        assert len(kids) == 3
        assert sorted(t.completed_digests()) == sorted(r.trial.digest for r in results)


def test_odd_metric_values_read_back_like_client_values(sql_store):
    """NaN, infinities, huge values, ints, a repeated point: as MLflow's own log_batch keeps them."""
    from mlflow.entities import Metric, Param

    from sweeper.sqlstore import RunRecord

    client = MlflowClient(sql_store)
    exp = client.create_experiment("odd")
    values = [0.5, float("nan"), float("inf"), -float("inf"), 1e300, -0.0, 3]
    metrics = [Metric("m", v, 1000 + i, i) for i, v in enumerate(values)]
    metrics += [Metric("m", 0.5, 1000, 0), Metric("other", float("nan"), 5, 9)]
    record = RunRecord("bulk", 1, 2, "FINISHED", {"t": "x"}, {"p": "1"}, metrics)
    [bulk_id] = SqlRunWriter.for_client(client, exp, sql_store).write([record])
    public_id = client.create_run(exp, tags={"t": "x"}).info.run_id
    client.log_batch(public_id, metrics=metrics, params=[Param("p", "1")])

    def read(run_id):
        run = client.get_run(run_id)
        history = {k: sorted((m.step, m.timestamp, repr(m.value)) for m in client.get_metric_history(run_id, k))
                   for k in ("m", "other")}
        return history, {k: repr(v) for k, v in run.data.metrics.items()}, run.data.params

    got = read(bulk_id)
    assert got == read(public_id)
    assert len(got[0]["m"]) == len(values) and got[1] == {"m": "3.0", "other": "nan"}


def test_insert_many_takes_columns_in_any_order_and_fills_python_defaults():
    import sqlalchemy as sa

    from sweeper.sqlstore import insert_many

    meta = sa.MetaData()
    table = sa.Table("t", meta, sa.Column("a", sa.Integer), sa.Column("b", sa.String),
                     sa.Column("c", sa.Integer, default=7))
    engine = sa.create_engine("sqlite://")
    meta.create_all(engine)
    with engine.begin() as connection:
        insert_many(connection, table, ("b", "a", "c"), [("x", 1, 2), ("y", 2, 3)])  # not the table's order
        insert_many(connection, table, ("b", "a"), [("z", 3)])  # c left to its Python-side default
        insert_many(connection, table, ("a", "b", "c"), [])
        rows = connection.execute(sa.select(table.c.a, table.c.b, table.c.c).order_by(table.c.a)).all()
    assert [tuple(r) for r in rows] == [(1, "x", 2), (2, "y", 3), (3, "z", 7)]


def test_runs_sent_as_json_read_back_like_client_runs(results, tmp_path):
    from servers import Server

    srv = Server(tmp_path)
    srv.start()
    try:
        rest = Tracker(srv.uri, "rest")
        public = _public_only(Tracker(srv.uri, "public"))
        assert isinstance(rest._rest, RestRunWriter) and rest._sql is None
        parents = [t.client.create_run(t.experiment_id).info.run_id for t in (rest, public)]
        odd = dataclasses.replace(results[2], extra_tags={"sweeper.note": "ünïcode, \"quotes\"\n"})
        rest_ids = rest.log_trials(parents[0], [*results[:2], odd])
        public_ids = public.log_trials(parents[1], [*results[:2], odd])
        assert all(isinstance(i, str) for i in rest_ids + public_ids), (rest_ids, public_ids)
        client = MlflowClient(srv.uri)
        for r, p in zip(rest_ids, public_ids):
            got, want = _read(client, r, tmp_path), _read(client, p, tmp_path)
            assert got == want
            assert got["info"][0] == "FINISHED" and got["artifacts"] == ["history.csv", "weights.npz"]
        assert client.get_run(rest_ids[2]).data.tags["sweeper.note"] == "ünïcode, \"quotes\"\n"
        # A record MLflow refuses fails before any request: no half-written run is left.
        bad = dataclasses.replace(results[0], extra_tags={"sweeper.note!": "x"})
        answer = rest.log_trials(parents[0], [bad])[0]
        assert isinstance(answer, Exception) and "sweeper.note!" in str(answer)
        kids = client.search_runs([rest.experiment_id], f"tags.mlflow.parentRunId = '{parents[0]}'")
        assert sorted(k.info.run_id for k in kids) == sorted(rest_ids)
        # An artifact the server refuses (uploaded beside the batch) fails the write, and
        # the run is not marked terminated: the tracker's retry replaces such a run.
        record = rest.trial_record(parents[0], results[0])
        record = dataclasses.replace(record, artifacts={**record.artifacts, "weights.npz/x": b"x"})  # under a file
        with pytest.raises(Exception, match="500"):
            rest._rest.write(record)
        left = [k for k in client.search_runs([rest.experiment_id], f"tags.mlflow.parentRunId = '{parents[0]}'")
                if k.info.run_id not in rest_ids]
        assert [k.info.status for k in left] == ["RUNNING"] and len(left[0].data.metrics) > 0
        rest.close()
        public.close()
    finally:
        srv.stop()


def test_one_bad_record_does_not_keep_the_others_out(tracking_uri, results):
    tracker = Tracker(tracking_uri, "bad")
    parent = tracker.client.create_run(tracker.experiment_id).info.run_id
    bad = dataclasses.replace(results[1], extra_tags={"sweeper.note!": "x"})  # a name MLflow refuses
    answers = tracker.log_trials(parent, [results[0], bad, results[2]])
    assert isinstance(answers[0], str) and isinstance(answers[2], str)
    assert isinstance(answers[1], Exception) and "sweeper.note!" in str(answers[1])
    runs = tracker.client.search_runs([tracker.experiment_id], "tags.`sweeper.kind` = 'trial'")
    assert sorted(r.info.run_id for r in runs) == sorted([answers[0], answers[2]])


def test_a_failed_transaction_writes_nothing(tracking_uri, results, monkeypatch):
    tracker = Tracker(tracking_uri, "failed")
    parent = tracker.client.create_run(tracker.experiment_id).info.run_id
    first = tracker.log_trials(parent, results[:1])[0]
    # Both records of the next batch get one run id: the second breaks the primary key
    # inside the transaction, after both records' artifacts were written. Neither may
    # survive, and the run written before is untouched.
    same = type("Id", (), {"hex": "f" * 32})()
    monkeypatch.setattr("sweeper.sqlstore.uuid.uuid4", lambda: same)
    answers = tracker.log_trials(parent, results[1:])
    assert all(isinstance(a, Exception) for a in answers)
    runs = tracker.client.search_runs([tracker.experiment_id], "tags.`sweeper.kind` = 'trial'")
    assert [r.info.run_id for r in runs] == [first]
    assert [a.path for a in tracker.client.list_artifacts(first)] == ["history.csv", "weights.npz"]


def test_history_points_bounds_each_logged_curve(tracking_uri, results, tmp_path):
    tracker = Tracker(tracking_uri, "thin", history_points=10)
    parent = tracker.client.create_run(tracker.experiment_id).info.run_id
    run_id = tracker.log_trial(parent, results[0])
    steps = [m.step for m in tracker.client.get_metric_history(run_id, "cost")]
    out = results[0].outcome
    assert len(out.history["cost"]) == 30
    assert 10 <= len(steps) <= 11 and steps[0] == 0 and steps[-1] == 29 and out.best_epoch in steps
    # Thinning only spares the store rows: history.csv keeps every epoch, exactly.
    path = tracker.client.download_artifacts(run_id, "history.csv", str(tmp_path))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(30))
    for key, series in out.history.items():
        assert [float(r[key]) for r in rows] == [float(v) for v in series], key


def test_a_server_that_is_away_fails_a_backlog_after_one_wave(results, tmp_path, monkeypatch):
    from servers import Server

    import sweeper.tracking as tracking

    srv = Server(tmp_path)
    srv.start()
    try:
        tracker = Tracker(srv.uri, "away")
        parent = tracker.client.create_run(tracker.experiment_id).info.run_id
        assert tracker._sql is None and tracker.remote  # a server: runs sent in waves
        assert all(isinstance(a, str) for a in tracker.log_trials(parent, results))
    finally:
        srv.stop()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    tried = []
    write = tracker._write_run_safely
    monkeypatch.setattr(tracker, "_write_run_safely", lambda record: tried.append(record) or write(record))
    backlog = results * 4  # 12 results, 3 waves of SENDERS = 4
    answers = tracker.log_trials(parent, backlog)
    assert len(answers) == 12 and all(isinstance(a, Exception) for a in answers)
    assert len(tried) == tracking.SENDERS  # the first wave failed whole: the rest were not tried
    answers = tracker.log_trials(parent, backlog, retry=True)  # a retry asks the store first
    assert all(isinstance(a, Exception) for a in answers) and len(tried) == tracking.SENDERS
    tracker.close()


def test_imports_of_absent_modules_fail_at_once_and_installed_ones_still_work():
    import importlib
    import sys
    import uuid

    from mlflow.tracking.request_header.registry import resolve_request_headers

    absent = f"sweeper_absent_{uuid.uuid4().hex}"
    try:
        assert block_absent(["json", absent]) == [absent]
        assert sys.modules[absent] is None
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(absent)
        assert importlib.import_module("json").dumps([1]) == "[1]"
    finally:
        sys.modules.pop(absent, None)
    RestRunWriter("http://127.0.0.1:9", "0")  # no request: it only reads the credentials
    # dbruntime exists only on Databricks: here, the writer blocks it.
    assert "dbruntime" in sys.modules and sys.modules["dbruntime"] is None
    assert "User-Agent" in resolve_request_headers()  # MLflow's headers are still made
