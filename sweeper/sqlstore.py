"""Many trials per transaction on MLflow's SQL stores (sqlite, PostgreSQL, MySQL).

MLflow's client writes one run in five or more transactions (create, params, metrics,
tags, terminate), and sqlite syncs every commit to disk: about 35 ms a trial here, more
than a one-epoch trial takes to train. :class:`SqlRunWriter` writes whole, terminated
runs, each with its tags, params, metrics and latest metrics, through MLflow's own table
models and session factory, as many as are waiting in one transaction. Artifacts are
written before the commit, so no reader ever sees a run without them, and a failed
transaction leaves no run at all.

It is a fast path, not a second store: :func:`SqlRunWriter.for_client` returns None
unless the client's store is MLflow's ``SqlAlchemyStore`` and every internal this needs
imports, and the tracker then writes through the public client. A test reads runs written
both ways back through ``MlflowClient`` and checks they are the same.
"""

from __future__ import annotations

import functools
import math
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence


@dataclass
class RunRecord:
    """One terminated run, complete: what the tracker writes for a trial."""

    run_name: str
    start_ms: int
    end_ms: int
    status: str  # MLflow's: FINISHED, FAILED, KILLED
    tags: dict[str, str]
    params: dict[str, str]
    metrics: list[Any]  # mlflow.entities.Metric
    artifacts: dict[str, bytes] = field(default_factory=dict)  # file name -> content


COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": (
        "run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id",
        "status", "start_time", "end_time", "deleted_time", "source_version",
        "lifecycle_stage", "artifact_uri", "experiment_id",
    ),
    "tags": ("key", "value", "run_uuid"),
    "params": ("key", "value", "run_uuid"),
    "metrics": ("key", "value", "timestamp", "step", "is_nan", "run_uuid"),
    "latest_metrics": ("key", "value", "timestamp", "step", "is_nan", "run_uuid"),
}
"""The columns each table's rows hold, in the order of the tuples :class:`SqlRunWriter` builds:
MLflow's own column order, so a positional driver (sqlite's) takes the rows as they are."""


class SqlRunWriter:
    """Writes :class:`RunRecord` s into one experiment of a SQL tracking store.

    Args:
        store: The client's ``SqlAlchemyStore``.
        experiment_id: Where the runs go.
        tracking_uri: For the artifact repository of non-local artifact stores.
    """

    def __init__(self, store: Any, experiment_id: str, tracking_uri: str):
        from mlflow.store.tracking.dbmodels import models

        self.store, self.experiment_id, self.tracking_uri = store, experiment_id, tracking_uri
        self._models = models
        self._artifact_location = store.get_experiment(experiment_id).artifact_location

    @classmethod
    def for_client(cls, client: Any, experiment_id: str, tracking_uri: str) -> "SqlRunWriter | None":
        """A writer for the client's store, or None where only the public client will do."""
        try:
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
            from mlflow.utils.validation import _validate_batch_log_data  # noqa: F401

            store = client._tracking_client.store
            return cls(store, experiment_id, tracking_uri) if isinstance(store, SqlAlchemyStore) else None
        except (ImportError, AttributeError):
            return None

    def write(self, records: Sequence[RunRecord]) -> list[str | Exception]:
        """Writes the records in one transaction.

        Returns:
            Per record, its run id, or the exception that kept it out: a value MLflow
            does not accept, or an artifact that could not be written. The other records
            are written all the same.

        Raises:
            mlflow.exceptions.MlflowException: The store failed; no record is written then
                (their artifacts are removed again).
        """
        answers: list[str | Exception] = []
        rows: dict[Any, list[tuple[Any, ...]]] = {}
        written: list[str] = []
        try:
            for rec in records:
                run_id = uuid.uuid4().hex
                try:
                    run_rows = self._rows(run_id, rec)
                    if rec.artifacts:
                        self._log_artifacts(run_rows["artifact_uri"], rec.artifacts)
                        written.append(run_rows["artifact_uri"])
                except Exception as exc:
                    answers.append(exc)
                    continue
                answers.append(run_id)
                for model, part in run_rows["tables"]:
                    rows.setdefault(model, []).extend(part)
            if rows:
                with self.store.ManagedSessionMaker(read_only=False) as session:
                    connection = session.connection()
                    for model, part in rows.items():
                        insert_many(connection, model.__table__, COLUMNS[model.__tablename__], part)
        except BaseException:
            for uri in written:
                self._remove_artifacts(uri)
            raise
        return answers

    def _rows(self, run_id: str, rec: RunRecord) -> dict[str, Any]:
        """The record's rows, table by table (runs first), and its artifact URI."""
        from mlflow.entities import LifecycleStage, RunStatus, SourceType
        from mlflow.utils.mlflow_tags import MLFLOW_USER
        from mlflow.utils.uri import append_to_uri_path

        m = self._models
        params, tags = validated(rec)
        run_tags = {t.key: t.value for t in tags}
        artifact_uri = append_to_uri_path(self._artifact_location, run_id, "artifacts")
        run = (
            run_id, rec.run_name, SourceType.to_string(SourceType.UNKNOWN), "", "",
            run_tags.get(MLFLOW_USER, "unknown"),
            RunStatus.to_string(RunStatus.from_string(rec.status)), rec.start_ms, rec.end_ms,
            None, "", LifecycleStage.ACTIVE, artifact_uri, int(self.experiment_id),
        )
        metric_rows = metric_rows_for(run_id, rec.metrics, self.store)
        return {"artifact_uri": artifact_uri, "tables": [
            (m.SqlRun, [run]),
            (m.SqlTag, [(t.key, t.value, run_id) for t in tags]),
            (m.SqlParam, [(p.key, p.value, run_id) for p in params]),
            (m.SqlMetric, metric_rows),
            (m.SqlLatestMetric, latest_rows(metric_rows)),
        ]}

    def _log_artifacts(self, artifact_uri: str, files: dict[str, bytes]) -> None:
        local = _local_path(artifact_uri)
        if local is not None:  # a plain file copy; MLflow's local repository does the same
            local.mkdir(parents=True, exist_ok=True)
            for name, data in files.items():
                (local / name).write_bytes(data)
            return
        log_through_repository(artifact_uri, self.tracking_uri, files)

    def _remove_artifacts(self, artifact_uri: str) -> None:
        import shutil

        local = _local_path(artifact_uri)
        if local is not None:
            shutil.rmtree(local.parent, ignore_errors=True)  # the run's folder


def validated(rec: RunRecord) -> tuple[list[Any], list[Any]]:
    """MLflow's checks of the record's names and values; its params and tags as entities.

    The tags include the run name (``mlflow.runName``), as MLflow stores it.

    Raises:
        mlflow.exceptions.MlflowException: A name or value MLflow would refuse.
    """
    from mlflow.entities import Param, RunTag
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME
    from mlflow.utils.validation import _validate_batch_log_data

    run_tags = {**rec.tags, MLFLOW_RUN_NAME: rec.run_name}
    _, params, tags = _validate_batch_log_data(
        _one_per_key(rec.metrics), [Param(k, v) for k, v in rec.params.items()],
        [RunTag(k, v) for k, v in run_tags.items()],
    )
    return params, tags


def checked_metric(metric: Any) -> tuple[Any, int, int]:
    """A metric's value, step and timestamp, once their types are known to be right.

    Raises:
        mlflow.exceptions.MlflowException: MLflow's message for a value, step or timestamp
            of the wrong type.
    """
    value, step, timestamp = metric.value, metric.step, metric.timestamp
    if not (isinstance(value, (int, float)) and isinstance(step, int) and isinstance(timestamp, int)):
        from mlflow.utils.validation import _validate_metric

        _validate_metric(metric.key, value, timestamp, step)
    return value, step, timestamp


def insert_many(connection: Any, table: Any, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Inserts ``rows`` (tuples in ``columns`` order) into ``table`` with one ``executemany``.

    The statement is compiled once per dialect, table and columns, and the rows go to the
    database driver as they are. SQLAlchemy's own ``execute(insert(), rows)`` processes
    every row's parameters in Python first: for 500 metric values that was half of the
    transaction's CPU. Where ``columns`` leave out one that has a Python-side default (a
    newer MLflow's table), SQLAlchemy's path fills it in, so that path is taken instead.
    """
    if not rows:
        return
    sql, order = _insert_sql(connection.dialect, table, tuple(columns))
    if sql is None:
        connection.execute(table.insert(), [dict(zip(columns, row)) for row in rows])
    elif order is None:  # a driver with named parameters: PostgreSQL's, for one
        connection.exec_driver_sql(sql, [dict(zip(columns, row)) for row in rows])
    elif order == tuple(range(len(columns))):
        connection.exec_driver_sql(sql, list(rows))
    else:
        connection.exec_driver_sql(sql, [tuple(row[i] for i in order) for row in rows])


@functools.lru_cache(maxsize=64)
def _insert_sql(dialect: Any, table: Any, columns: tuple[str, ...]) -> tuple[str | None, tuple[int, ...] | None]:
    """The INSERT for ``columns`` in the dialect's parameter style, and for a positional
    style, where each parameter comes from in a row; ``(None, None)`` where a column left
    out has a Python-side default."""
    if any(c.key not in columns and c.default is not None for c in table.columns):
        return None, None
    compiled = table.insert().compile(dialect=dialect, column_keys=list(columns))
    if not compiled.positional:
        return compiled.string, None
    return compiled.string, tuple(columns.index(k) for k in compiled.positiontup)


def log_through_repository(artifact_uri: str, tracking_uri: str, files: dict[str, bytes]) -> None:
    """Writes files under an artifact URI through MLflow's artifact repository for it."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(artifact_uri, tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            path = Path(tmp) / name
            path.write_bytes(data)
            repo.log_artifact(str(path))


def _local_path(uri: str) -> Path | None:
    from urllib.parse import urlparse

    from mlflow.utils.uri import is_local_uri
    from mlflow.utils.file_utils import local_file_uri_to_path

    if not is_local_uri(uri) or urlparse(uri).scheme not in ("", "file"):
        return None
    return Path(local_file_uri_to_path(uri))


def _one_per_key(metrics: Sequence[Any]) -> list[Any]:
    """The first metric of each key, for MLflow's validation of names and types.

    Validating all of them costs more than writing them (500 values a trial); the rest
    are checked one by one (:func:`checked_metric`) where their value is read anyway.
    """
    first: dict[str, Any] = {}
    for metric in metrics:
        first.setdefault(metric.key, metric)
    return list(first.values())


def metric_rows_for(run_id: str, metrics: Sequence[Any], store: Any) -> list[tuple[Any, ...]]:
    """Rows for the metrics table (``COLUMNS["metrics"]``), duplicates dropped, as MLflow's
    ``log_batch`` does.

    Raises:
        mlflow.exceptions.MlflowException: A value, step or timestamp of the wrong type.
    """
    seen, rows = set(), []
    for metric in metrics:
        value, step, timestamp = checked_metric(metric)
        if isinstance(value, float) and not math.isfinite(value):
            is_nan, value = store.sanitize_metric_value(value)
        else:
            is_nan = False
        row = (metric.key, value, timestamp, step, is_nan, run_id)
        if row in seen:
            continue
        seen.add(row)
        rows.append(row)
    return rows


def recency(row: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    """A metric row's (step, timestamp, value): MLflow's order for the latest metric. The
    row starts (key, value, timestamp, step), as ``COLUMNS["metrics"]`` does."""
    return row[3], row[2], row[1]


def latest_rows(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Each key's latest metric row: the first highest in :func:`recency`, as MLflow keeps it."""
    best: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        cur = best.get(row[0])
        if cur is None or recency(row) > recency(cur):
            best[row[0]] = row
    return list(best.values())
