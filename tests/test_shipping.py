"""After the trials, on a real sweep in a real sqlite store: the single model to ship follows
the ranking on its own input scaling, and stored learning curves keep their epochs."""

from __future__ import annotations

import dataclasses
import tempfile

import numpy as np
import pytest

from core.network import predict_proba
from sweeper.ensemble import error_rate
from sweeper.finalize import Shipped, format_shipped, learning_curves, ship
from sweeper.model import EnsembleModel
from sweeper.ranking import best_trial, leaderboard
from sweeper.runner import RunOptions
from sweeper.spec import load_spec
from sweeper.sweep import plan, submit
from sweeper.tracking import Tracker

# Two grid points (normalize on and off), two seeds each; 20 epochs, 5 of them logged.
GRID = """\
name: ship
seed: 5
seeds: 2
dataset: {name: moons, n_samples: 200, noise: 0.25}
grid:
  normalize: [true, false]
fixed: {architecture: [6], optimizer: adam, learning_rate: 0.02, epochs: 20}
ensemble: {method: caruana, size: 4, candidates: 4}
tracking: {history_points: 5}
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One local sweep (no Ray) that the tests read; ship() adds runs of its own to it."""
    folder = tmp_path_factory.mktemp("ship")
    grid = folder / "grid.yaml"
    grid.write_text(GRID)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    the_plan = plan(load_spec(grid))
    outcome = submit(the_plan, RunOptions(local=True), uri, echo=lambda message: None,
                     progress_enabled=False, journal_dir=folder / "journal")
    assert outcome.counts == {"finished": 4} and not outcome.finish_error
    tracker = Tracker(uri, "ship")
    yield the_plan, outcome, tracker
    tracker.close()


def _entries(the_plan, tracker):
    return tracker.trial_entries(t.digest for t in the_plan.trials)


def _npz(tracker, run_id: str, path: str) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        with np.load(tracker.client.download_artifacts(run_id, path, tmp), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


def test_a_sweep_ships_the_rank_1_point_s_best_seed(swept):
    the_plan, outcome, tracker = swept
    best = best_trial(_entries(the_plan, tracker))
    single = outcome.shipped[-1]
    assert single.method == "single" and single.members == [(best.label, best.run_id, 1.0)]
    assert outcome.rows[0].label == best.label and (single.label, single.seed) == (best.label, best.seed)


def test_the_single_model_follows_the_ranking_on_its_own_input_scaling(swept):
    the_plan, outcome, tracker = swept
    entries = _entries(the_plan, tracker)
    off = sorted((e for e in entries if e.params["normalize"] == "False"), key=lambda e: e.seed)
    on = sorted((e for e in entries if e.params["normalize"] == "True"), key=lambda e: e.seed)
    # Dev errors set so that the best trial alone (0.05) is a lucky seed of the rank-2 point
    # (normalize on: mean 0.175), while the rank-1 point (off: mean 0.10) ties on its seeds.
    dev = {off[0].run_id: 0.10, off[1].run_id: 0.10, on[0].run_id: 0.05, on[1].run_id: 0.30}
    rigged = [dataclasses.replace(e, dev_error=dev[e.run_id]) for e in entries]
    assert leaderboard(rigged)[0].label == off[0].label

    ensemble, single = ship(tracker, outcome.sweep_run_id, the_plan.spec, rigged, the_plan.data, {})
    assert single.members == [(off[0].label, off[0].run_id, 1.0)]  # the tie goes to the lower seed
    assert (single.label, single.seed, single.dev_error) == (off[0].label, off[0].seed, 0.10)
    assert {run_id for _, run_id, _ in ensemble.members} <= {e.run_id for e in on}
    # The registered single model takes raw features and, like its trial, does not scale them.
    prepared = next(d for (normalize, _), d in the_plan.data.items() if not normalize)
    X_test = np.asarray(prepared.X_test, dtype=np.float64)
    weights = {k: v.astype(np.float64) for k, v in _npz(tracker, off[0].run_id, "weights.npz").items()}
    expected = np.asarray(predict_proba(weights, X_test, off[0].params.get("activation", "relu")))
    model = _shipped_model(tracker, single.run_id)
    np.testing.assert_allclose(model.predict_proba(X_test), expected, rtol=0, atol=1e-9)
    assert single.test_error == error_rate(expected, np.asarray(prepared.y_test))
    # The run records the trial, so a stored sweep can name it again.
    stored = Shipped.trial_from_params(tracker.client.get_run(single.run_id).data.params)
    assert stored == {"label": off[0].label, "seed": off[0].seed}
    assert Shipped("single", **stored).trial() == single.trial() == f"{off[0].label}, seed {off[0].seed}"
    assert format_shipped([ensemble, single]).splitlines()[-1].endswith(
        f"{off[0].label}, seed {off[0].seed}")
    assert single.as_report()["members"] == [(f"{off[0].label}, seed {off[0].seed}", 1.0)]
    # A sweep stored before trials were recorded still names the single model's member.
    assert Shipped("single", members=[(off[0].label, off[0].run_id, 1.0)]).trial() == off[0].label


def _shipped_model(tracker, run_id: str) -> EnsembleModel:
    with tempfile.TemporaryDirectory() as tmp:
        return EnsembleModel.load(tracker.client.download_artifacts(run_id, "model/data/ensemble.npz", tmp))


def test_stored_learning_curves_keep_each_point_s_epoch(swept):
    the_plan, outcome, tracker = swept
    stored = learning_curves(tracker, outcome.rows, {})  # from MLflow: 5 epochs of 20 logged
    full = learning_curves(tracker, outcome.rows, outcome.outcomes)  # every epoch, in memory
    assert list(stored) == list(full) == [r.label for r in outcome.rows]
    for label, curve in stored.items():
        for key, kept in curve.items():
            every = dict(full[label][key])
            epochs = [e for e, _ in kept]
            assert sorted(every) == list(range(1, 21))
            assert 3 <= len(kept) < 20 and epochs[0] == 1 and epochs[-1] == 20 and epochs == sorted(epochs)
            assert all(value == pytest.approx(every[e], abs=1e-7) for e, value in kept), (label, key)


def test_learning_curves_come_from_each_point_s_best_seed_whatever_the_store_s_order(swept):
    the_plan, outcome, tracker = swept
    entries = _entries(the_plan, tracker)
    # Each point's later trial in the store's order is made its best seed.
    later = {e.group: e for e in entries}
    rigged = [dataclasses.replace(e, dev_error=0.1 if later[e.group] is e else 0.3) for e in entries]
    curves = learning_curves(tracker, leaderboard(rigged), outcome.outcomes)
    assert len(curves) == 2
    for best in later.values():
        history = outcome.outcomes[best.run_id].history["dev_error"]
        assert [v for _, v in curves[best.label]["dev_error"]] == [float(v) for v in history]
