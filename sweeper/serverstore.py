"""MLflow's SQL store for a tracking server, with ``log_batch`` in one transaction.

A tracking server spends most of a sweeper trial's cost in MLflow's ``log_batch``: it
opens a session (and on sqlite a commit, with its disk syncs) for the params, another
for the metrics and another for the tags, builds an ORM object for every metric value
and flushes them one by one. :class:`BatchSqlStore` is MLflow's ``SqlAlchemyStore`` with
``log_batch`` done in one transaction: MLflow's own validation, the rows inserted with one
``executemany`` per table, the latest metrics compared in Python by MLflow's own order.
Everything else is MLflow's. Where a batch needs what only MLflow's path handles (metrics
of a logged model, or a metric row the run already has), MLflow's ``log_batch`` runs
instead, so the answer is always MLflow's.

A server gets it through :mod:`sweeper.storeplugin` (``--backend-store-uri sweeper:<database
URI>``). On a sqlite file it also turns on write-ahead logging: one disk sync a commit
instead of three or more. The file must then stay on a local disk, as sqlite's WAL needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.store.db.db_types import SQLITE
from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.utils.validation import (
    _validate_batch_log_data,
    _validate_batch_log_limits,
    _validate_param_keys_unique,
    _validate_run_id,
)

from .sqlstore import COLUMNS, insert_many, latest_rows, metric_rows_for, recency


class BatchSqlStore(SqlAlchemyStore):
    """MLflow's SQL store with ``log_batch`` in one transaction."""

    def __init__(self, db_uri: str, default_artifact_root: str, read_db_uri: str | None = None):
        super().__init__(db_uri, default_artifact_root, read_db_uri=read_db_uri)
        if self.db_type == SQLITE:
            _write_ahead_logging(self.engine)

    def log_batch(self, run_id: str, metrics: Sequence[Any], params: Sequence[Any], tags: Sequence[Any]) -> None:
        if any(getattr(m, "model_id", None) is not None for m in metrics):
            return super().log_batch(run_id, metrics, params, tags)  # a logged model's metrics
        _validate_run_id(run_id)
        metrics, params, tags = _validate_batch_log_data(metrics, params, tags)
        _validate_batch_log_limits(metrics, params, tags)
        _validate_param_keys_unique(params)
        # The managed session commits at the end, and rolls back and answers any error as
        # MLflow's log_batch does (MlflowException as it is, anything else as one).
        with self.ManagedSessionMaker(read_only=False) as session:
            run = self._get_run(run_uuid=run_id, session=session)
            self._check_run_is_active(run)
            done = self._write_batch(session, run_id, metrics, params)
            if not done:
                session.rollback()
        if not done:  # MLflow's path skips the rows the run has already
            return super().log_batch(run_id, metrics, params, tags)
        if tags:
            self._set_tags(run_id, tags)  # MLflow's, in a transaction of its own as in its log_batch

    def _write_batch(self, session: Any, run_id: str, metrics: Sequence[Any], params: Sequence[Any]) -> bool:
        """Writes the params and metrics; False where a row clashes with one in the store
        (the session must then be rolled back)."""
        connection = session.connection()
        if params:
            table = SqlParam.__table__
            existing = dict(connection.execute(
                sqlalchemy.select(table.c.key, table.c.value).where(table.c.run_uuid == run_id)
            ).all())
            conflicts = [
                {"key": p.key, "old_value": existing[p.key], "new_value": p.value}
                for p in params if p.key in existing and existing[p.key] != p.value
            ]
            if conflicts:  # MLflow's own message
                raise MlflowException(
                    "Changing param values is not allowed. Params were already"
                    f" logged='{conflicts}' for run ID='{run_id}'.",
                    INVALID_PARAMETER_VALUE,
                )
            insert_many(connection, table, COLUMNS["params"],
                        [(p.key, p.value, run_id) for p in params if p.key not in existing])
        if not metrics:
            return True
        rows = metric_rows_for(run_id, metrics, self)  # sanitized, duplicates dropped, as MLflow does
        try:
            insert_many(connection, SqlMetric.__table__, COLUMNS["metrics"], rows)
            self._update_latest(connection, run_id, rows, SqlLatestMetric.__table__)
        except sqlalchemy.exc.IntegrityError:
            # A metric row the run has already, or a latest-metric row that another batch
            # for the same run inserted meanwhile: MLflow's log_batch recovers from both.
            return False
        return True

    @staticmethod
    def _update_latest(connection: Any, run_id: str, rows: Sequence[tuple], table: Any) -> None:
        """The run's latest metrics: each key's row highest in (step, timestamp, value),
        MLflow's order, over what the store has and what this batch adds."""
        best = {row[0]: row for row in latest_rows(rows)}
        keys = sorted(best)
        stored: dict[str, tuple] = {}
        for i in range(0, len(keys), 500):  # MLflow's chunk of keys per query
            query = (
                sqlalchemy.select(table.c.key, table.c.value, table.c.timestamp, table.c.step)  # rows as recency() reads them
                .where(table.c.run_uuid == run_id, table.c.key.in_(keys[i:i + 500]))
                .order_by(table.c.key)
                .with_for_update()  # as MLflow: the rows stay ours until the commit
            )
            stored.update((r[0], r) for r in connection.execute(query).all())
        new = [best[k] for k in keys if k not in stored]
        changed = [best[k] for k in keys if k in stored and recency(best[k]) > recency(stored[k])]
        insert_many(connection, table, COLUMNS["latest_metrics"], new)
        if changed:
            b = sqlalchemy.bindparam
            connection.execute(
                table.update()
                .where(table.c.run_uuid == b("r_run"), table.c.key == b("r_key"))
                .values(value=b("r_value"), timestamp=b("r_timestamp"), step=b("r_step"), is_nan=b("r_is_nan")),
                [
                    {"r_key": k, "r_value": v, "r_timestamp": t, "r_step": s, "r_is_nan": n, "r_run": r}
                    for k, v, t, s, n, r in changed
                ],
            )


def _write_ahead_logging(engine: Any) -> None:
    """Puts a sqlite file into WAL mode (it stays so; readers and MLflow's own store work
    with it unchanged). An in-memory or read-only database keeps its mode."""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    except sqlalchemy.exc.OperationalError:
        pass
