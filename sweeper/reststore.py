"""Trial runs sent to an MLflow tracking server as plain JSON, without protobuf round trips.

MLflow's client turns every call into protobuf, then JSON, then a dict again, and parses
the answer back through protobuf: for a run with a few hundred metric values that is
more CPU on the driver than the server spends storing them. :class:`RestRunWriter` sends
the same requests the client would (create the run; one batch of params and metrics,
with the artifacts uploaded beside it; mark it terminated) to the same documented REST endpoints, built
as JSON directly, through MLflow's own HTTP helper: its credentials (token, basic auth,
TLS settings), retries and timeouts from ``MLFLOW_TRACKING_*`` and ``MLFLOW_HTTP_*`` all
apply unchanged. A test reads runs written both ways back and checks they are the same.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Callable, Iterator, Sequence

from .sqlstore import RunRecord, checked_metric, log_through_repository, validated

API = "/api/2.0/mlflow"
_BATCH_LIMIT = 1000  # MLflow's cap on metrics + params + tags in one log-batch request
_PARAM_LIMIT = 100  # and on params in one request


# What MLflow's request-header providers import on every request to learn whether they
# run on Databricks. Each import that fails searches the whole sys.path again: 1.1 ms of
# the driver's CPU per request here, 4-5 ms per trial.
_PLATFORM_PROBES = ("dbruntime", "pyspark")


def block_absent(names: Sequence[str]) -> list[str]:
    """Makes later imports of those ``names`` that are not installed fail at once.

    A ``None`` in ``sys.modules`` is Python's documented way to stop an import: it
    raises ModuleNotFoundError, just as a search that finds nothing does, without the
    search. Installed modules are left alone. Returns the names blocked.
    """
    import importlib.util
    import sys

    blocked = []
    for name in names:
        if name in sys.modules:
            continue
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            sys.modules[name] = None
            blocked.append(name)
    return blocked


class RestRunWriter:
    """Writes :class:`RunRecord` s into one experiment of a tracking server.

    Args:
        tracking_uri: The server, ``http://`` or ``https://``.
        experiment_id: Where the runs go.
    """

    def __init__(self, tracking_uri: str, experiment_id: str):
        from mlflow.utils.credentials import get_default_host_creds

        self.tracking_uri, self.experiment_id = tracking_uri, experiment_id
        self._creds = get_default_host_creds(tracking_uri)
        block_absent(_PLATFORM_PROBES)

    @classmethod
    def for_uri(cls, tracking_uri: str, experiment_id: str) -> "RestRunWriter | None":
        """A writer for a tracking server, or None for any other store (or an MLflow
        whose helpers moved: the tracker then writes through the public client)."""
        if not tracking_uri.startswith(("http://", "https://")):
            return None
        try:
            from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository  # noqa: F401
            from mlflow.utils.rest_utils import http_request, verify_rest_response  # noqa: F401

            return cls(tracking_uri, experiment_id)
        except (ImportError, AttributeError):
            return None

    def write(self, rec: RunRecord) -> str:
        """Writes one run; returns its id.

        Names and values are checked first, as MLflow's client checks them, so a record
        MLflow refuses fails before any request. A request that fails after the run was
        created leaves it RUNNING; the tracker's retry deletes such a run.

        Raises:
            mlflow.exceptions.MlflowException: A value MLflow refuses, or the server's error.
        """
        from mlflow.utils.mlflow_tags import MLFLOW_USER

        params, _ = validated(rec)
        metrics = [_metric_json(m) for m in rec.metrics]
        run = self._call("runs/create", {
            "experiment_id": str(self.experiment_id),
            "user_id": rec.tags.get(MLFLOW_USER, "unknown"),
            "start_time": rec.start_ms,
            "run_name": rec.run_name,
            "tags": [{"key": k, "value": v} for k, v in rec.tags.items()],
        })["run"]["info"]
        run_id = run["run_id"]
        ps = [{"key": p.key, "value": p.value} for p in params]
        # The artifacts go up while the server stores the batch (its costliest request),
        # on a thread of their own; the run is marked terminated once both are in.
        uploading = _Background(self._upload, run["artifact_uri"], rec.artifacts) if rec.artifacts else None
        try:
            for chunk_params, chunk_metrics in batches(ps, metrics):
                self._call("runs/log-batch", {"run_id": run_id, "params": chunk_params, "metrics": chunk_metrics})
        except BaseException:
            if uploading is not None:
                uploading.join(reraise=False)  # the batch's error is the one reported
            raise
        if uploading is not None:
            uploading.join()
        self._call("runs/update", {"run_id": run_id, "run_uuid": run_id, "status": rec.status,
                                   "end_time": rec.end_ms})
        return run_id

    def _call(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        path = f"{API}/{endpoint}"
        response = verify_rest_response(http_request(self._creds, path, "POST", json=body), path)
        return response.json()

    def _upload(self, artifact_uri: str, files: dict[str, bytes]) -> None:
        """PUTs each file to the server's artifact proxy, as MLflow's repository does for a
        small file; anything else (an s3:// root, multipart uploads) goes through the
        repository itself."""
        from mlflow.environment_variables import MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD

        if not artifact_uri.startswith("mlflow-artifacts:") or MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD.get():
            log_through_repository(artifact_uri, self.tracking_uri, files)
            return
        from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import augmented_raise_for_status, http_request

        creds = get_default_host_creds(MlflowArtifactsRepository.resolve_uri(artifact_uri, self.tracking_uri))
        for name, data in files.items():
            response = http_request(creds, f"/{name}", "PUT", data=data,
                                    extra_headers={"Content-Type": "application/octet-stream"})
            augmented_raise_for_status(response)


class _Background:
    """``fn(*args)`` on a thread of its own; :meth:`join` waits and raises what it raised."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        self._error: BaseException | None = None

        def run() -> None:
            try:
                fn(*args)
            except BaseException as exc:  # handed to join()
                self._error = exc

        self._thread = threading.Thread(target=run, name="sweeper-upload", daemon=True)
        self._thread.start()

    def join(self, reraise: bool = True) -> None:
        self._thread.join()
        if self._error is not None and reraise:
            raise self._error


def batches(params: Sequence[Any], metrics: Sequence[Any]) -> Iterator[tuple[list[Any], list[Any]]]:
    """``(params, metrics)`` for each log-batch request MLflow's limits allow: the first
    holds up to :data:`_PARAM_LIMIT` params and as many metrics as fit beside them, then
    come the remaining params, then the remaining metrics."""
    first = list(params[:_PARAM_LIMIT])
    room = _BATCH_LIMIT - len(first)
    yield first, list(metrics[:room])
    for i in range(_PARAM_LIMIT, len(params), _PARAM_LIMIT):
        yield list(params[i : i + _PARAM_LIMIT]), []
    for i in range(room, len(metrics), _BATCH_LIMIT):
        yield [], list(metrics[i : i + _BATCH_LIMIT])


def _metric_json(metric: Any) -> dict[str, Any]:
    """A metric as the REST API takes it; non-finite values spelled as protobuf's JSON does."""
    value, step, timestamp = checked_metric(metric)
    if isinstance(value, float) and not math.isfinite(value):
        value = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return {"key": metric.key, "value": value, "timestamp": timestamp, "step": step}
