"""After the trials: ensembles from the best, the test set once, the model to ship, the report.

The test set is touched here and only here, and only for the chosen models: the ensemble
and the single model, which is recorded as an ensemble of one (``method: single``). The
single model is the leaderboard's rank-1 point's best seed, so it is the model the ranking
recommends; the ensemble's candidates are the best trials taken one by one. Test metrics
therefore live on ensemble runs alone; a trial run never carries one.
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

from .ranking import Entry, Row, best_trial
from .tracking import KIND_TAG, PARENT_TAG, SWEEP_TAG, Tracker

if TYPE_CHECKING:  # pragma: no cover
    from core.splits import PreparedData
    from core.train import TrainOutcome

    from .spec import SweepSpec

CURVES_SHOWN = 5  # learning curves of this many best trials in the report
_CURVE_KEYS = ("train_error", "dev_error")


@dataclass(frozen=True)
class Candidate:
    """A trial that may join an ensemble, with what predicting needs."""

    entry: Entry
    params: dict[str, np.ndarray]
    activation: str
    dev_proba: np.ndarray


@dataclass
class Shipped:
    """One chosen model: an ensemble, or the single model as an ensemble of one.

    ``label`` and ``seed`` name the single model's trial (the rank-1 point's best seed);
    an ensemble leaves them empty and lists its trials in ``members``.
    """

    method: str
    run_id: str = ""
    model_uri: str = ""
    dev_error: float = float("nan")
    test_error: float = float("nan")
    curve: list[float] = field(default_factory=list)
    members: list[tuple[str, str, float]] = field(default_factory=list)  # (label, run id, weight)
    label: str = ""
    seed: int | None = None

    @staticmethod
    def trial_from_params(params: Mapping[str, str]) -> dict[str, Any]:
        """``label`` and ``seed`` from the params of a stored single-model run.

        Args:
            params: The run's params; ``trial_label`` and ``trial_seed`` where logged.
        """
        seed = params.get("trial_seed")
        return {"label": params.get("trial_label", ""), "seed": int(seed) if seed else None}

    def trial(self) -> str:
        """The single model's trial, ``"lambda=0.1 architecture=[8], seed 7"``; ``""`` for an ensemble."""
        if self.method != "single":
            return ""
        # A sweep stored before labels were logged on the single run still names its member.
        label = self.label or (self.members[0][0] if self.members else "")
        return label if self.seed is None else f"{label}, seed {self.seed}"

    def as_report(self) -> dict[str, Any]:
        """The dict :func:`sweeper.report.build_report` takes for one chosen model."""
        members = [(label, weight) for label, _, weight in self.members]
        if self.method == "single" and self.trial():
            members = [(self.trial(), weight) for _, weight in members[:1]]
        return {
            "name": self.method if self.method != "single" else "best single trial",
            "method": self.method,
            "dev_error": self.dev_error,
            "test_error": self.test_error,
            "curve": self.curve,
            "members": members,
        }


def format_shipped(shipped: Sequence[Shipped]) -> str:
    """The chosen models side by side: dev and test error, members, registered model, trial."""
    uris = [s.model_uri for s in shipped]
    width = max([len("registered as"), *map(len, uris)])
    lines = [f"  {'model':<10} {'dev err':>8} {'test err':>9} {'members':>8}  {'registered as':<{width}}  trial"]
    for s in shipped:
        lines.append(f"  {s.method:<10} {s.dev_error:>8.4f} {s.test_error:>9.4f} {len(s.members):>8}  "
                     f"{s.model_uri:<{width}}  {s.trial()}".rstrip())
    return "\n".join(lines)


def _data_for(data: Mapping[tuple[bool, str], "PreparedData"], normalize: bool) -> "PreparedData":
    return next(d for (norm, _), d in sorted(data.items()) if norm == normalize)


def _weights(tracker: Tracker, entry: Entry, outcomes: Mapping[str, "TrainOutcome"]) -> dict[str, np.ndarray]:
    if entry.run_id in outcomes:
        return outcomes[entry.run_id].params
    with tempfile.TemporaryDirectory() as tmp:
        path = tracker.client.download_artifacts(entry.run_id, "weights.npz", tmp)
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}


def _normalized(entry: Entry) -> bool:
    return entry.params.get("normalize", "True") == "True"


def _candidate(
    tracker: Tracker, entry: Entry, X_dev: np.ndarray, outcomes: Mapping[str, "TrainOutcome"]
) -> Candidate:
    from core.network import predict_proba

    params = {k: np.asarray(v, dtype=np.float64) for k, v in _weights(tracker, entry, outcomes).items()}
    activation = entry.params.get("activation", "relu")
    return Candidate(entry, params, activation, np.asarray(predict_proba(params, X_dev, activation)))


def candidates(
    tracker: Tracker,
    entries: Sequence[Entry],
    n: int,
    data: Mapping[tuple[bool, str], "PreparedData"],
    outcomes: Mapping[str, "TrainOutcome"],
) -> list[Candidate]:
    """The ``n`` best finished trials, best first, sharing the best one's input scaling."""
    finished = [e for e in entries if e.status == "finished" and math.isfinite(e.dev_error) and e.run_id]
    finished.sort(key=lambda e: (e.dev_error, e.n_params, e.label, e.seed))
    if not finished:
        return []
    normalize = _normalized(finished[0])
    same = [e for e in finished if _normalized(e) == normalize][:n]
    X_dev = np.asarray(_data_for(data, normalize).X_dev, dtype=np.float64)
    return [_candidate(tracker, e, X_dev, outcomes) for e in same]


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
    """Builds the ensemble and the single model, tests them once, logs and registers them.

    The single model is the rank-1 leaderboard point's best seed (:func:`best_trial`), on
    its own input scaling; the ensemble chooses among the best trials taken one by one.

    Returns:
        The chosen models, the ensemble (if any) first; empty when nothing finished.
    """
    method = spec.ensemble.method
    single = best_trial(entries)
    if single is None:
        return []
    plans: list[tuple[Shipped, Sequence[Candidate], Sequence[float], "PreparedData", dict]] = []
    cands: list[Candidate] = []
    if method != "none":
        cands = candidates(tracker, entries, max(1, spec.ensemble.candidates), data, outcomes)
    if cands:
        prepared = _data_for(data, _normalized(cands[0].entry))
        sel = _select(method, cands, np.asarray(prepared.y_dev), spec)
        shipped = Shipped(method, dev_error=float(sel.dev_error), curve=[float(v) for v in sel.curve])
        extra = {"size": spec.ensemble.size, "candidates": len(cands)}
        plans.append((shipped, cands, [float(w) for w in sel.weights], prepared, extra))
    prepared = _data_for(data, _normalized(single))
    # The single trial is often a candidate already, on the same scaling: reuse its weights.
    best = next((c for c in cands if c.entry.run_id == single.run_id), None) or _candidate(
        tracker, single, np.asarray(prepared.X_dev, dtype=np.float64), outcomes)
    shipped = Shipped("single", dev_error=float(single.dev_error), label=single.label, seed=single.seed)
    plans.append((shipped, [best], [1.0], prepared, {"trial_label": single.label, "trial_seed": single.seed}))
    for shipped, members, weights, prepared, extra in plans:
        registered = spec.name if shipped.method != "single" or method == "none" else f"{spec.name}-single"
        _test_and_log(tracker, sweep_run_id, shipped, (members, weights, prepared), registered, extra)
    return [shipped for shipped, *_ in plans]


def _test_and_log(tracker: Tracker, sweep_run_id: str, shipped: Shipped, plan: tuple, registered: str,
                  extra: dict) -> None:
    """The one test-set evaluation of a chosen model, then its run and registered version."""
    from .ensemble import error_rate

    members, weights, prepared = plan
    model = _model(members, weights, prepared)
    test_proba = model.predict_proba(_raw(prepared, np.asarray(prepared.X_test, dtype=np.float64)))
    shipped.test_error = error_rate(test_proba, np.asarray(prepared.y_test))
    shipped.members = [(c.entry.label, c.entry.run_id, w) for c, w in zip(members, weights) if w > 0]
    _log_shipped(tracker, sweep_run_id, shipped, model, registered, extra)


def _raw(prepared: "PreparedData", X: np.ndarray) -> np.ndarray:
    """Undo the driver's normalization: a shipped model takes raw features."""
    norm = prepared.normalizer
    return X * np.asarray(norm.std, dtype=np.float64) + np.asarray(norm.mean, dtype=np.float64)


def learning_curves(
    tracker: Tracker, rows: Sequence[Row], outcomes: Mapping[str, "TrainOutcome"], n: int = CURVES_SHOWN
) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Train and dev error by epoch of the ``n`` best ranked points, each from its best seed.

    The seed is the point's finished trial with the lowest dev error (ties by seed), which
    the leaderboard puts first in ``run_ids``: the same trial at submit time and later.

    Returns:
        Label -> ``{"train_error": [(epoch, error), ...], "dev_error": [...]}``, epochs
        counted from 1: every epoch of a trial trained in this process, the epochs MLflow
        kept (histories are thinned to ``tracking.history_points``) of a stored one.
    """
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for row in [r for r in rows if r.rank][:n]:
        run_id = row.run_ids[0]
        if run_id in outcomes:
            history = outcomes[run_id].history
            curves[row.label] = {k: [(e, float(v)) for e, v in enumerate(history[k], 1)] for k in _CURVE_KEYS}
        else:
            curves[row.label] = {k: _stored_curve(tracker, run_id, k) for k in _CURVE_KEYS}
    return curves


def _stored_curve(tracker: Tracker, run_id: str, key: str) -> list[tuple[int, float]]:
    """A stored history as (epoch, value): the step is the 0-based epoch, kept through thinning."""
    by_step = {m.step: m.value for m in tracker.client.get_metric_history(run_id, key)}
    if not by_step:
        return []
    final = max(by_step)  # the final value sits one step past the last epoch; it is no epoch
    return [(step + 1, value) for step, value in sorted(by_step.items()) if step < final]


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
