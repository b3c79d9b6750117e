"""Sweeps as MLflow stores them: find one by run id or grid name, rank it again."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from .ranking import Row, leaderboard
from .tracking import KIND_TAG, Tracker, resolve_tracking_uri


class StoredSweepError(LookupError):
    """The named sweep is not in the store."""


def find_sweep(sweep: str, tracking_uri: str | None) -> tuple[Tracker, Any]:
    """The tracker of the sweep's experiment and its parent run.

    Args:
        sweep: A sweep's parent run id, or a grid name (its latest sweep).
        tracking_uri: The MLflow store.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    if re.fullmatch(r"[0-9a-f]{32}", sweep):
        try:
            run = client.get_run(sweep)
        except MlflowException:
            raise StoredSweepError(f"no run {sweep} in {uri}") from None
        name = client.get_experiment(run.info.experiment_id).name
        return Tracker(uri, name), run
    if client.get_experiment_by_name(sweep) is None:
        names = sorted(e.name for e in client.search_experiments())
        raise StoredSweepError(f"no sweep named '{sweep}' in {uri}; sweeps there: {', '.join(names) or 'none'}")
    tracker = Tracker(uri, sweep)
    runs = list(tracker.search(f"tags.`{KIND_TAG}` = 'sweep'", order_by=["attributes.start_time DESC"]))
    if not runs:
        raise StoredSweepError(f"experiment '{sweep}' in {uri} holds no sweep")
    return tracker, runs[0]


def sweep_digests(tracker: Tracker, run: Any) -> list[str]:
    """The digests of every trial of the sweep's grid (trials.json on the parent run)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = tracker.client.download_artifacts(run.info.run_id, "trials.json", tmp)
        return json.loads(Path(path).read_text())


def load_sweep_rows(sweep: str, tracking_uri: str | None) -> list[Row]:
    """The leaderboard of a stored sweep, from MLflow alone (no retraining)."""
    tracker, run = find_sweep(sweep, tracking_uri)
    entries = tracker.trial_entries(sweep_digests(tracker, run))
    baseline = float(run.data.params.get("baseline_error", 0.0))
    return leaderboard(entries, baseline)
