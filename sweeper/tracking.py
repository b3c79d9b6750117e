"""MLflow tracking: one parent run per submission, one nested child run per trial.

Everything is logged from the driver, in batches: one ``log_batch`` carries a trial's
params, tags, final metrics and (thinned) history, because one MLflow call per metric
costs seconds per run on a tracking server.
"""

from __future__ import annotations

import io
import json
import os
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from .newstore import seed_sqlite_store
from .reststore import RestRunWriter, batches
from .runcontent import (
    HISTORY_POINTS,
    SERVER_HISTORY_POINTS,
    finite,
    history_csv,
    param_strings,
    param_value,
    trial_metrics,
)
from .sqlstore import RunRecord, SqlRunWriter
from .trackinguri import check_reachable, experiment_location, resolve_tracking_uri

if TYPE_CHECKING:  # pragma: no cover
    from .ranking import Entry
    from .results import TrialResult
    from .spec import SweepSpec

KIND_TAG = "sweeper.kind"
DIGEST_TAG = "sweeper.digest"
STATUS_TAG = "sweeper.status"
SWEEP_TAG = "sweeper.sweep"
PARENT_TAG = "mlflow.parentRunId"
DRIVER_TAG = "sweeper.driver"

# A trial whose digest has a run with one of these statuses is not trained again: both
# are deterministic outcomes of the configuration. failed and timed_out runs are retried.
COMPLETE_STATUSES = ("finished", "diverged")
_MLFLOW_STATUS = {
    "finished": "FINISHED",
    "diverged": "FAILED",
    "failed": "FAILED",
    "timed_out": "FAILED",
    "killed": "KILLED",
}
SENDERS = 4
"""Runs sent to a tracking server at a time: each is a few round trips, mostly waiting."""


def driver_id() -> str:
    """``host:pid`` of this driver process, for the ``sweeper.driver`` tag."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _driver_gone(driver: str | None) -> bool:
    if not driver or ":" not in driver:
        return True  # no owner recorded: nobody can still be writing it
    host, _, pid = driver.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Tracker:
    """Writes a sweep to MLflow and reads back what an experiment already holds.

    Args:
        tracking_uri: MLflow tracking URI; None means ``MLFLOW_TRACKING_URI`` or ./mlflow.db.
        experiment_name: The grid's ``name``.
        history_points: Most points logged per history metric (longer histories are
            thinned, keeping the first, last and best epochs); None means
            :data:`HISTORY_POINTS`, or :data:`SERVER_HISTORY_POINTS` on a tracking server.
    """

    def __init__(self, tracking_uri: str | None, experiment_name: str, history_points: int | None = None):
        from mlflow import MlflowClient

        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        check_reachable(self.tracking_uri)
        self.remote = self.tracking_uri.startswith(("http://", "https://"))
        if self.remote:
            # MLflow's client retries a call for minutes by default. The sweep has its own
            # journal and retry loop, so fail a call in seconds unless the user chose otherwise.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
            # Otherwise set_terminated fetches the whole run back just to print its URL.
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        seed_sqlite_store(self.tracking_uri)  # a new sqlite store without MLflow's migrations
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self.experiment_name = experiment_name
        self.experiment_id = self._experiment(experiment_name)
        self.driver = driver_id()
        self.history_points = history_points or (SERVER_HISTORY_POINTS if self.remote else HISTORY_POINTS)
        self.senders = SENDERS if self.remote else 1  # runs written at a time through the client
        self._sql = SqlRunWriter.for_client(self.client, self.experiment_id, self.tracking_uri)
        self._rest = RestRunWriter.for_uri(self.tracking_uri, self.experiment_id) if self._sql is None else None
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stops the sender threads, if any were started."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _experiment(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                self.client.restore_experiment(exp.experiment_id)
            return exp.experiment_id
        return self.client.create_experiment(name, artifact_location=experiment_location(self.tracking_uri, name))

    # -- reading ---------------------------------------------------------------------

    def search(self, filter_string: str, order_by: Sequence[str] | None = None) -> Iterator[Any]:
        """Every run of the experiment that matches, page by page."""
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string, max_results=1000, order_by=order_by, page_token=token
            )
            yield from page
            token = page.token
            if not token:
                return

    def completed_digests(self) -> dict[str, str]:
        """Digest -> run id of every trial with a complete result (finished or diverged)."""
        done: dict[str, str] = {}
        for run in self.search(f"tags.`{KIND_TAG}` = 'trial'"):
            tags = run.data.tags
            if tags.get(STATUS_TAG) in COMPLETE_STATUSES and run.info.status == _MLFLOW_STATUS[tags[STATUS_TAG]]:
                done.setdefault(tags.get(DIGEST_TAG, ""), run.info.run_id)
        return done

    def mark_stale_running(self) -> int:
        """Marks RUNNING runs whose driver is gone as KILLED; returns how many.

        A run's driver (tag ``sweeper.driver``, ``host:pid``) is gone when it ran on this
        host and its process no longer exists. Runs of live drivers, and of drivers on
        other hosts, which cannot be checked from here, are left alone.
        """
        n = 0
        for run in self.search("attributes.status = 'RUNNING'"):
            tags = run.data.tags
            if tags.get(KIND_TAG) not in ("trial", "sweep", "ensemble") or not _driver_gone(tags.get(DRIVER_TAG)):
                continue
            self.client.set_tag(run.info.run_id, STATUS_TAG, "killed")
            self.client.set_terminated(run.info.run_id, "KILLED")
            n += 1
        return n

    def close_abandoned_sweep(self, run_id: str) -> bool:
        """Ends a sweep run left RUNNING by a driver that is gone, once every trial it
        journaled is in MLflow: the trials ran, only closing the run failed (the store
        was away). FINISHED without ``sweeper.ranked``, so the next submit ranks it.

        Returns:
            Whether the run was closed.
        """
        run = self.client.get_run(run_id)
        if run.info.status != "RUNNING" or not _driver_gone(run.data.tags.get(DRIVER_TAG)):
            return False
        self.client.set_tag(run_id, "sweeper.closed_by", "sweeper sync: its driver had gone")
        self.client.set_terminated(run_id, "FINISHED")
        return True

    def trial_entries(self, digests: Iterable[str]) -> list["Entry"]:
        """Ranking entries for the given digests, one per digest, from the stored runs.

        Where a digest has several runs (a failed try, then a finished one), the
        complete one wins, then the latest.
        """
        wanted = set(digests)
        best: dict[str, Any] = {}
        for run in self.search(f"tags.`{KIND_TAG}` = 'trial'"):
            digest = run.data.tags.get(DIGEST_TAG)
            if digest not in wanted:
                continue
            if digest not in best or _preference(run) > _preference(best[digest]):
                best[digest] = run
        return [entry_from_run(run) for run in best.values()]

    # -- writing ---------------------------------------------------------------------

    def start_sweep(self, spec: "SweepSpec", n_trials: int, n_skipped: int, extra: dict[str, Any]) -> str:
        """Opens the parent run of one submission and logs the grid file on it."""
        run = self.client.create_run(
            self.experiment_id,
            tags={KIND_TAG: "sweep", DRIVER_TAG: driver_id(), "mlflow.source.name": str(spec.path or "grid.yaml")},
            run_name=f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')}",
        )
        run_id = run.info.run_id
        params = {
            "seed": spec.seed,
            "seeds": spec.seeds,
            "baseline_error": spec.baseline_error,
            "dataset": json.dumps(dict(spec.dataset), default=str),
            "split": param_value(spec.split),
            "n_trials": n_trials,
            "n_skipped": n_skipped,
            **extra,
        }
        self._log_batch(run_id, params=params)
        self.client.log_text(run_id, spec.text, Path(spec.path).name if spec.path else "grid.yaml")
        return run_id

    def log_trial(self, sweep_run_id: str, result: "TrialResult", retry: bool = False) -> str:
        """Writes one trial as a nested child run, terminated with its outcome.

        Args:
            sweep_run_id: The parent run.
            result: What the trial produced.
            retry: An earlier try may have written the run (its answer was lost, or the
                driver died before forgetting it) or half-written it (the store went away
                mid-write): reuse a complete one, delete a half-written one, so each
                trial has exactly one run.

        Raises:
            Exception: Whatever the store raised; nothing half-written survives a retry.
        """
        answer = self.log_trials(sweep_run_id, [result], retry)[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def log_trials(self, sweep_run_id: str, results: Sequence["TrialResult"],
                   retry: bool | Sequence[bool] = False) -> list[str | Exception]:
        """Writes trials as nested child runs, as many per store round trip as it can.

        On a SQL store (sqlite, PostgreSQL, MySQL) all of them go in one transaction; to
        a tracking server, :data:`SENDERS` runs are sent at a time, as plain JSON.

        Args:
            sweep_run_id: The parent run.
            results: What the trials produced.
            retry: Per result (or one for all), as in :meth:`log_trial`.

        Returns:
            Per result, its run id, or the exception that kept it out of the store.
        """
        retries = [retry] * len(results) if isinstance(retry, bool) else list(retry)
        answers: list[str | Exception | None] = [None] * len(results)
        todo: list[int] = []
        for i, (result, again) in enumerate(zip(results, retries)):
            try:
                existing = self._settle_earlier_try(sweep_run_id, result) if again else None
            except Exception as exc:  # the store is away: the others would fail alike, slowly
                answers[i:] = [answer if answer is not None else exc for answer in answers[i:]]
                todo = []
                break
            if existing:
                answers[i] = existing  # MLflow took it before; the caller's journal entry can go
            else:
                todo.append(i)
        records = [self.trial_record(sweep_run_id, results[i]) for i in todo]
        if records and self._sql is not None:
            try:
                ids = self._sql.write(records)
            except Exception as exc:
                ids = [exc] * len(records)
        else:
            ids = self._send(records)
        for i, run_id in zip(todo, ids):
            answers[i] = run_id
        return answers  # type: ignore[return-value]

    def _send(self, records: Sequence[RunRecord]) -> list[str | Exception]:
        """Writes records through the client, a wave of :data:`SENDERS` at a time on a server.

        A wave that fails whole means the store is away: the rest are not tried (each try
        would wait out the client's retries) and get the same error.
        """
        pool, out = self._senders(), []
        for start in range(0, len(records), self.senders):
            wave = list(pool.map(self._write_run_safely, records[start : start + self.senders]))
            out += wave
            if all(isinstance(answer, Exception) for answer in wave):
                return out + [wave[0]] * (len(records) - len(out))
        return out

    def trial_record(self, sweep_run_id: str, result: "TrialResult") -> RunRecord:
        """Everything a trial's run holds: tags, params, metrics, ``weights.npz`` and
        ``history.csv`` (every epoch, where the metrics may be thinned)."""
        trial = result.trial
        tags = {
            PARENT_TAG: sweep_run_id,
            SWEEP_TAG: sweep_run_id,
            KIND_TAG: "trial",
            DIGEST_TAG: trial.digest,
            STATUS_TAG: result.status,
            DRIVER_TAG: self.driver,
        }
        if result.reason:
            tags["sweeper.reason"] = result.reason[:4000]
        if result.node:
            tags["sweeper.node"] = result.node
        tags.update(result.extra_tags)
        artifacts = {}
        if result.outcome is not None:
            buf = io.BytesIO()
            np.savez(buf, **result.outcome.params)
            artifacts["weights.npz"] = buf.getvalue()
            artifacts["history.csv"] = history_csv(result.outcome.history)
        return RunRecord(
            run_name=trial.label(), start_ms=result.started_ms, end_ms=result.ended_ms,
            status=_MLFLOW_STATUS[result.status], tags=tags, params=param_strings(trial.params()),
            metrics=list(trial_metrics(result, self.history_points)), artifacts=artifacts,
        )

    def _senders(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.senders, thread_name_prefix="sweeper-send")
        return self._pool

    def _write_run_safely(self, record: RunRecord) -> str | Exception:
        try:
            return self._rest.write(record) if self._rest is not None else self._write_run(record)
        except Exception as exc:
            return exc

    def _write_run(self, record: RunRecord) -> str:
        """One run through the public client: create, one batch, artifacts, terminate."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        run = self.client.create_run(
            self.experiment_id, start_time=record.start_ms, tags=record.tags, run_name=record.run_name
        )
        run_id = run.info.run_id
        self._log_batch(run_id, params=record.params, metrics=record.metrics)
        if record.artifacts:
            repo = get_artifact_repository(run.info.artifact_uri, tracking_uri=self.tracking_uri)
            with tempfile.TemporaryDirectory() as tmp:
                for name, data in record.artifacts.items():
                    path = Path(tmp) / name
                    path.write_bytes(data)
                    repo.log_artifact(str(path))
        self.client.set_terminated(run_id, record.status, end_time=record.end_ms)
        return run_id

    def _settle_earlier_try(self, sweep_run_id: str, result: "TrialResult") -> str | None:
        """Deletes a half-written run of this result; returns the id of a complete one."""
        query = f"tags.`{SWEEP_TAG}` = '{sweep_run_id}' and tags.`{DIGEST_TAG}` = '{result.trial.digest}'"
        for run in self.search(query):
            if run.info.status == "RUNNING":
                self.client.delete_run(run.info.run_id)
            elif (run.data.tags.get(STATUS_TAG) == result.status
                  and run.info.status == _MLFLOW_STATUS[result.status]):
                return run.info.run_id
        return None

    def finish_sweep(self, run_id: str, status: str, metrics: dict[str, float], files: dict[str, str]) -> None:
        """Logs the sweep's summary metrics and text files and closes the parent run."""
        now = int(time.time() * 1000)
        from mlflow.entities import Metric

        ms = [Metric(k, v, now, 0) for k, v in metrics.items() if finite(v) is not None]
        if ms:
            self.client.log_batch(run_id, metrics=ms)
        for name, text in files.items():
            self.client.log_text(run_id, text, name)
        self.client.set_terminated(run_id, status)

    def _log_batch(self, run_id: str, params: dict[str, Any] | None = None, metrics: Sequence[Any] = ()) -> None:
        from mlflow.entities import Param

        ps = [Param(k, param_value(v)) for k, v in (params or {}).items()]
        for chunk_params, chunk_metrics in batches(ps, metrics):
            self.client.log_batch(run_id, metrics=chunk_metrics, params=chunk_params, synchronous=True)


def _preference(run: Any) -> tuple[bool, int]:
    complete = run.data.tags.get(STATUS_TAG) in COMPLETE_STATUSES
    return (complete, run.info.start_time or 0)


def entry_from_run(run: Any) -> "Entry":
    """A ranking entry from a stored trial run."""
    from .ranking import Entry, group_key

    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    return Entry(
        run_id=run.info.run_id,
        digest=tags.get(DIGEST_TAG, ""),
        label=tags.get("mlflow.runName", run.info.run_name or ""),
        group=group_key(params),
        status=tags.get(STATUS_TAG, "failed"),
        train_error=float(metrics.get("train_error", float("nan"))),
        dev_error=float(metrics.get("dev_error", float("nan"))),
        n_params=int(metrics.get("n_params", 0)),
        seed=int(params.get("seed", 0)),
        params=dict(params),
    )
