"""Sweeps as MLflow stores them: find one by run id or grid name, rank it again."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .finalize import Shipped
from .ranking import Row, leaderboard
from .tracking import KIND_TAG, SWEEP_TAG, Tracker
from .trackinguri import resolve_tracking_uri


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


def stored_shipped(tracker: Tracker, run: Any) -> list[Shipped]:
    """The ensemble runs of a sweep (the chosen models), ensemble first, single last."""
    out = []
    query = f"tags.`{KIND_TAG}` = 'ensemble' and tags.`{SWEEP_TAG}` = '{run.info.run_id}'"
    for ens in tracker.search(query):
        rid = ens.info.run_id
        with tempfile.TemporaryDirectory() as tmp:
            try:
                members = json.loads(Path(tracker.client.download_artifacts(rid, "members.json", tmp)).read_text())
            except Exception:  # an ensemble run cut short before its members were written
                members = []
        curve = sorted(tracker.client.get_metric_history(rid, "ensemble_dev_error"), key=lambda m: m.step)
        versions = tracker.client.search_model_versions(f"run_id = '{rid}'")
        out.append(Shipped(
            method=ens.data.tags.get("sweeper.method", ens.data.params.get("method", "?")),
            run_id=rid,
            model_uri=f"models:/{versions[0].name}/{versions[0].version}" if versions else f"runs:/{rid}/model",
            dev_error=ens.data.metrics.get("dev_error", float("nan")),
            test_error=ens.data.metrics.get("test_error", float("nan")),
            curve=[m.value for m in curve],
            members=[(m["label"], m["run_id"], m["weight"]) for m in members],
        ))
    return sorted(out, key=lambda s: s.method == "single")


@dataclass
class StoredSweep:
    """Everything `rank` and `report` show, read back from MLflow."""

    name: str
    run_id: str
    rows: list[Row]
    axes: list[str]
    baseline_error: float
    shipped: list[Shipped]
    tracker: Tracker


def load_stored(sweep: str, tracking_uri: str | None) -> StoredSweep:
    """A stored sweep's leaderboard, grid axes and chosen models (no retraining)."""
    tracker, run = find_sweep(sweep, tracking_uri)
    entries = tracker.trial_entries(sweep_digests(tracker, run))
    baseline = float(run.data.params.get("baseline_error", 0.0))
    axes = json.loads(run.data.params.get("axes", "[]"))
    return StoredSweep(
        tracker.experiment_name, run.info.run_id, leaderboard(entries, baseline), axes, baseline,
        stored_shipped(tracker, run), tracker,
    )
