"""Sweeps as MLflow stores them: find one by run id or grid name, rank it again."""

from __future__ import annotations

import difflib
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .finalize import Shipped
from .ranking import Row, leaderboard
from .tracking import KIND_TAG, PARENT_TAG, SWEEP_TAG, Tracker
from .trackinguri import NoStore, check_reachable, check_store, resolve_tracking_uri


class StoredSweepError(LookupError):
    """The named sweep is not in the store, or the store is not there."""


Note = Callable[[str], None]


def find_sweep(sweep: str, tracking_uri: str | None, note: Note | None = None) -> tuple[Tracker, Any]:
    """The tracker of the sweep's experiment and its parent run.

    Reads only: a local store that does not exist is an error, never created.

    Args:
        sweep: A sweep's parent run id, or a grid name (its latest sweep). The run id of
            one of a sweep's trials or chosen models stands for that sweep.
        tracking_uri: The MLflow store.
        note: Told when ``sweep`` stood for another run (a trial's sweep).

    Raises:
        StoredSweepError: No such store, run or sweep.
        TrackingUnreachable: The tracking server or database does not answer.
    """
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    try:
        check_store(uri, must_exist=True)
    except NoStore as exc:
        raise StoredSweepError(str(exc)) from None
    check_reachable(uri)
    client = MlflowClient(tracking_uri=uri)
    run = _run(client, sweep) if re.fullmatch(r"[0-9a-f]{32}", sweep) else None
    if run is not None:
        run = _sweep_of(client, run, uri, note or (lambda message: None))
        name = client.get_experiment(run.info.experiment_id).name
        return Tracker(uri, name), run
    exp = client.get_experiment_by_name(sweep)
    if exp is None or exp.lifecycle_stage != "active":
        what = "no run or sweep" if re.fullmatch(r"[0-9a-f]{32}", sweep) else "no sweep"
        raise StoredSweepError(f"{what} named {sweep!r} in {uri}{_sweeps_there(client, sweep)}")
    tracker = Tracker(uri, sweep)
    runs = list(tracker.search(f"tags.`{KIND_TAG}` = 'sweep'", order_by=["attributes.start_time DESC"]))
    if not runs:
        raise StoredSweepError(f"experiment {sweep!r} in {uri} holds no sweep{_sweeps_there(client, sweep)}")
    return tracker, runs[0]


def _run(client: Any, run_id: str) -> Any | None:
    """The run with that id, or None where the store has none."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def _sweep_of(client: Any, run: Any, uri: str, note: Note) -> Any:
    """The sweep run itself, or the sweep a trial or chosen model belongs to."""
    run_id, tags = run.info.run_id, run.data.tags
    kind = tags.get(KIND_TAG)
    if kind == "sweep":
        return run
    if kind not in ("trial", "ensemble"):
        why = f"its {KIND_TAG} tag is {kind!r}" if kind else f"it has no {KIND_TAG} tag: sweeper did not log it"
        raise StoredSweepError(f"run {run_id} in {uri} is not a sweep ({why}); "
                               "name a sweep's run id or its grid's name")
    what = "trial" if kind == "trial" else "chosen model"
    parent_id = tags.get(SWEEP_TAG) or tags.get(PARENT_TAG)
    parent = _run(client, parent_id) if parent_id else None
    if parent is None or parent.data.tags.get(KIND_TAG) != "sweep":
        raise StoredSweepError(f"run {run_id} in {uri} is a {what} whose sweep run "
                               f"({parent_id or 'not recorded'}) is not in the store")
    note(f"run {run_id} is a {what} of sweep {parent_id}; showing that sweep")
    return parent


def _sweeps_there(client: Any, wanted: str) -> str:
    """'; sweeps there: ...', naming only the experiments that hold a sweep."""
    names = sorted(
        exp.name for exp in client.search_experiments()
        if client.search_runs([exp.experiment_id], f"tags.`{KIND_TAG}` = 'sweep'", max_results=1)
    )
    close = difflib.get_close_matches(wanted, names, n=1)
    return (f"; sweeps there: {', '.join(map(repr, names)) or 'none'}"
            + (f"; did you mean {close[0]!r}?" if close else ""))


def sweep_digests(tracker: Tracker, run: Any) -> list[str]:
    """The digests of every trial of the sweep's grid (trials.json on the parent run)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = tracker.client.download_artifacts(run.info.run_id, "trials.json", tmp)
        return json.loads(Path(path).read_text())


def load_sweep_rows(sweep: str, tracking_uri: str | None, note: Note | None = None) -> list[Row]:
    """The leaderboard of a stored sweep, from MLflow alone (no retraining); see :func:`find_sweep`."""
    tracker, run = find_sweep(sweep, tracking_uri, note)
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
            **Shipped.trial_from_params(ens.data.params),
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


def load_stored(sweep: str, tracking_uri: str | None, note: Note | None = None) -> StoredSweep:
    """A stored sweep's leaderboard, grid axes and chosen models (no retraining); see :func:`find_sweep`."""
    tracker, run = find_sweep(sweep, tracking_uri, note)
    entries = tracker.trial_entries(sweep_digests(tracker, run))
    baseline = float(run.data.params.get("baseline_error", 0.0))
    axes = json.loads(run.data.params.get("axes", "[]"))
    return StoredSweep(
        tracker.experiment_name, run.info.run_id, leaderboard(entries, baseline), axes, baseline,
        stored_shipped(tracker, run), tracker,
    )
