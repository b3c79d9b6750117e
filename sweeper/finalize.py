"""After the trials: ensembles from the best, the test set once, the model to ship, the report.

The test set is touched here and only here, and only for the chosen models: the ensemble
and the best single trial, which is recorded as an ensemble of one (``method: single``).
Test metrics therefore live on ensemble runs alone; a trial run never carries one.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .ranking import Entry, Row
from .tracking import KIND_TAG, PARENT_TAG, SWEEP_TAG, Tracker

if TYPE_CHECKING:  # pragma: no cover
    from core.splits import PreparedData
    from core.train import TrainOutcome

    from .spec import SweepSpec

CURVES_SHOWN = 5  # learning curves of this many best trials in the report


@dataclass(frozen=True)
class Candidate:
    """A trial that may join an ensemble, with what predicting needs."""

    entry: Entry
    params: dict[str, np.ndarray]
    activation: str
    dev_proba: np.ndarray


@dataclass
class Shipped:
    """One chosen model: an ensemble, or the best single trial as an ensemble of one."""

    method: str
    run_id: str = ""
    model_uri: str = ""
    dev_error: float = float("nan")
    test_error: float = float("nan")
    curve: list[float] = field(default_factory=list)
    members: list[tuple[str, str, float]] = field(default_factory=list)  # (label, run id, weight)

    def as_report(self) -> dict[str, Any]:
        return {
            "name": self.method if self.method != "single" else "best single trial",
            "method": self.method,
            "dev_error": self.dev_error,
            "test_error": self.test_error,
            "curve": self.curve,
            "members": [(label, weight) for label, _, weight in self.members],
        }


def _data_for(data: Mapping[tuple[bool, str], "PreparedData"], normalize: bool) -> "PreparedData":
    return next(d for (norm, _), d in sorted(data.items()) if norm == normalize)


def _weights(tracker: Tracker, entry: Entry, outcomes: Mapping[str, "TrainOutcome"]) -> dict[str, np.ndarray]:
    if entry.run_id in outcomes:
        return outcomes[entry.run_id].params
    with tempfile.TemporaryDirectory() as tmp:
        path = tracker.client.download_artifacts(entry.run_id, "weights.npz", tmp)
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}


def candidates(
    tracker: Tracker,
    entries: Sequence[Entry],
    n: int,
    data: Mapping[tuple[bool, str], "PreparedData"],
    outcomes: Mapping[str, "TrainOutcome"],
) -> list[Candidate]:
    """The ``n`` best finished trials, best first, sharing the best one's input scaling."""
    from core.network import predict_proba

    finished = [e for e in entries if e.status == "finished" and math.isfinite(e.dev_error) and e.run_id]
    finished.sort(key=lambda e: (e.dev_error, e.n_params, e.label, e.seed))
    if not finished:
        return []
    normalize = finished[0].params.get("normalize", "True") == "True"
    same = [e for e in finished if (e.params.get("normalize", "True") == "True") == normalize][:n]
    X_dev = np.asarray(_data_for(data, normalize).X_dev, dtype=np.float64)
    out = []
    for e in same:
        params = {k: np.asarray(v, dtype=np.float64) for k, v in _weights(tracker, e, outcomes).items()}
        activation = e.params.get("activation", "relu")
        out.append(Candidate(e, params, activation, np.asarray(predict_proba(params, X_dev, activation))))
    return out


def _select(method: str, cands: Sequence[Candidate], y_dev: np.ndarray, spec: "SweepSpec"):
    from .ensemble import caruana, top_k

    probas = np.stack([c.dev_proba for c in cands])
    if method == "caruana":
        init = min(spec.ensemble.init, len(cands), spec.ensemble.size)
        return caruana(probas, y_dev, spec.ensemble.size, init=init)
    return top_k(probas, y_dev, min(spec.ensemble.k, len(cands)))


def _model(cands: Sequence[Candidate], weights: Sequence[float], data: "PreparedData"):
    from .model import EnsembleModel

    members = [(float(w), c.params, c.activation) for c, w in zip(cands, weights) if w > 0]
    return EnsembleModel.from_data(members, data)


def _log_shipped(tracker: Tracker, sweep_run_id: str, shipped: Shipped, model, registered: str, extra: dict) -> None:
    from mlflow.entities import Metric, Param

    from .model import log_model

    tags = {PARENT_TAG: sweep_run_id, SWEEP_TAG: sweep_run_id, KIND_TAG: "ensemble", "sweeper.method": shipped.method}
    run = tracker.client.create_run(tracker.experiment_id, tags=tags, run_name=f"ensemble: {shipped.method}")
    shipped.run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric("dev_error", shipped.dev_error, now, 0), Metric("test_error", shipped.test_error, now, 0)]
    metrics += [Metric("n_members", float(len(shipped.members)), now, 0)]
    metrics += [Metric("ensemble_dev_error", v, now, i + 1) for i, v in enumerate(shipped.curve)]
    params = [Param("method", shipped.method)] + [Param(k, str(v)) for k, v in extra.items()]
    tracker.client.log_batch(shipped.run_id, metrics=metrics, params=params, synchronous=True)
    members = [{"label": lab, "run_id": rid, "weight": w} for lab, rid, w in shipped.members]
    tracker.client.log_text(shipped.run_id, json.dumps(members, indent=2), "members.json")
    shipped.model_uri = log_model(tracker.client, shipped.run_id, model, registered)
    tracker.client.set_terminated(shipped.run_id, "FINISHED")


def ship(
    tracker: Tracker,
    sweep_run_id: str,
    spec: "SweepSpec",
    entries: Sequence[Entry],
    data: Mapping[tuple[bool, str], "PreparedData"],
    outcomes: Mapping[str, "TrainOutcome"],
) -> list[Shipped]:
    """Builds the ensemble and the best single model, tests them once, logs and registers them.

    Returns:
        The chosen models, the ensemble (if any) first; empty when nothing finished.
    """
    from .ensemble import error_rate

    method = spec.ensemble.method
    n = spec.ensemble.candidates if method != "none" else 1
    cands = candidates(tracker, entries, max(1, n), data, outcomes)
    if not cands:
        return []
    normalize = cands[0].entry.params.get("normalize", "True") == "True"
    prepared = _data_for(data, normalize)
    y_dev, X_test = np.asarray(prepared.y_dev), np.asarray(prepared.X_test, dtype=np.float64)
    plans: list[tuple[Shipped, Sequence[Candidate], Sequence[float]]] = []
    if method != "none":
        sel = _select(method, cands, y_dev, spec)
        shipped = Shipped(method, dev_error=float(sel.dev_error), curve=[float(v) for v in sel.curve])
        plans.append((shipped, cands, [float(w) for w in sel.weights]))
    best = cands[0]
    plans.append((Shipped("single", dev_error=float(best.entry.dev_error), curve=[]), [best], [1.0]))
    out = []
    for shipped, members, weights in plans:
        model = _model(members, weights, prepared)
        test_proba = model.predict_proba(_raw(prepared, X_test))
        shipped.test_error = error_rate(test_proba, np.asarray(prepared.y_test))
        shipped.members = [(c.entry.label, c.entry.run_id, w) for c, w in zip(members, weights) if w > 0]
        registered = spec.name if shipped.method != "single" or method == "none" else f"{spec.name}-single"
        extra = {"size": spec.ensemble.size, "candidates": len(cands)} if shipped.method != "single" else {}
        _log_shipped(tracker, sweep_run_id, shipped, model, registered, extra)
        out.append(shipped)
    return out


def _raw(prepared: "PreparedData", X: np.ndarray) -> np.ndarray:
    """Undo the driver's normalization: a shipped model takes raw features."""
    norm = prepared.normalizer
    return X * np.asarray(norm.std, dtype=np.float64) + np.asarray(norm.mean, dtype=np.float64)


def learning_curves(
    tracker: Tracker, rows: Sequence[Row], outcomes: Mapping[str, "TrainOutcome"], n: int = CURVES_SHOWN
) -> dict[str, dict[str, list[float]]]:
    """Train and dev error per epoch of the ``n`` best ranked trials."""
    curves: dict[str, dict[str, list[float]]] = {}
    for row in [r for r in rows if r.rank][:n]:
        run_id = row.run_ids[0]
        if run_id in outcomes:
            history = outcomes[run_id].history
            curves[row.label] = {k: list(history[k]) for k in ("train_error", "dev_error")}
            continue
        curves[row.label] = {}
        for key in ("train_error", "dev_error"):
            points = sorted(tracker.client.get_metric_history(run_id, key), key=lambda m: m.step)
            curves[row.label][key] = [m.value for m in points][:-1]  # the last point is the final value
    return curves


def report_html(
    tracker: Tracker,
    title: str,
    rows: Sequence[Row],
    axes: Sequence[str],
    shipped: Sequence[Mapping[str, Any]],
    baseline_error: float,
    outcomes: Mapping[str, "TrainOutcome"] | None = None,
) -> tuple[str, list[str]]:
    """The sweep's HTML report and its summary sentences."""
    from .report import build_report, summarize

    points = [{a: r.params.get(a, "") for a in axes} for r in rows]
    summary = summarize(rows, points, baseline_error)
    curves = learning_curves(tracker, rows, outcomes or {})
    return build_report(title, rows, points, curves, shipped, summary), summary


def write_local(path: str | Path, text: str) -> Path:
    """Writes a report file, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
