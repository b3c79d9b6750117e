"""A real sweep: real local Ray, real sqlite MLflow store, the CLI as a user runs it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from sweeper.cli import main

GRID = """\
name: e2e
seed: 7
dataset: {name: moons, n_samples: 200, noise: 0.2}
grid:
  lambda: [0, 0.1]
  initializer: [he, xavier]
fixed:
  architecture: [8, 4]
  optimizer: adam
  learning_rate: 0.01
  epochs: 20
"""


def _runs(uri: str, kind: str):
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("e2e")
    return client, client.search_runs([exp.experiment_id], f"tags.`sweeper.kind` = '{kind}'", max_results=1000)


def _submit(grid, uri: str):
    journal = str(grid.parent / "journal")
    result = CliRunner().invoke(main, ["submit", str(grid), "--tracking-uri", uri, "--quiet", "--journal", journal])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def shared(ray_local, tmp_path_factory):
    """One sweep that read-only tests share (a sweep and a fresh store cost seconds)."""
    folder = tmp_path_factory.mktemp("shared")
    grid = folder / "grid.yaml"
    grid.write_text(GRID)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return grid, _submit(grid, uri), uri


@pytest.fixture
def submitted(ray_local, write_grid, tracking_uri):
    """A sweep of the test's own, for tests that change the grid or the store."""
    grid = write_grid(GRID)
    return grid, _submit(grid, tracking_uri)


def test_submit_logs_every_trial_as_a_nested_run(shared):
    grid, result, tracking_uri = shared
    client, sweeps = _runs(tracking_uri, "sweep")
    _, trials = _runs(tracking_uri, "trial")
    assert len(sweeps) == 1 and len(trials) == 4
    parent = sweeps[0].info.run_id
    for run in trials:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent
        assert run.data.tags["sweeper.status"] == "finished"
        assert len(run.data.tags["sweeper.digest"]) == 64
        for key in ("lambda", "keep_prob", "initializer", "architecture", "optimizer", "seed"):
            assert key in run.data.params
        for key in ("train_error", "dev_error", "train_seconds", "n_params"):
            assert key in run.data.metrics
        assert not any(k.startswith("test") for k in run.data.metrics)
        history = client.get_metric_history(run.info.run_id, "cost")
        assert len(history) == 20 and sorted(m.step for m in history) == list(range(20))
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
        assert "weights.npz" in artifacts
    assert json.loads(client.get_run(parent).data.params["n_trials"]) == 4
    assert "Leaderboard" in result.output and "sweeper ui" in result.output


def test_weights_artifact_loads_without_pickle(shared, tmp_path):
    grid, result, tracking_uri = shared
    client, trials = _runs(tracking_uri, "trial")
    path = client.download_artifacts(trials[0].info.run_id, "weights.npz", str(tmp_path))
    with np.load(path, allow_pickle=False) as weights:
        assert {"W1", "b1", "W2", "b2", "W3", "b3"} <= set(weights.files)
        assert weights["W1"].shape == (2, 8)


def test_resubmitting_skips_finished_trials(submitted, tracking_uri):
    grid, _ = submitted
    again = CliRunner().invoke(main, ["submit", str(grid), "--tracking-uri", tracking_uri, "--quiet"])
    assert again.exit_code == 0, again.output
    assert "nothing to train" in again.output
    _, trials = _runs(tracking_uri, "trial")
    assert len(trials) == 4
    assert "Leaderboard" in again.output


def test_a_changed_ensemble_or_baseline_ranks_again_without_training(submitted, tracking_uri):
    grid, _ = submitted
    client, _ = _runs(tracking_uri, "trial")
    steps = [
        (GRID + "ensemble: {method: top_k, k: 2}\n", "since the ensemble section changed", ["top_k"]),
        (GRID + "ensemble: {method: top_k, k: 2}\nbaseline_error: 0.05\n", "since baseline_error changed",
         ["top_k"]),
        (GRID + "ensemble: {method: top_k, k: 2}\nbaseline_error: 0.05\n", None, []),  # as it was
    ]
    for text, reason, methods in steps:
        grid.write_text(text)
        before = {r.info.run_id for r in _runs(tracking_uri, "ensemble")[1]}
        again = CliRunner().invoke(main, ["submit", str(grid), "--tracking-uri", tracking_uri])
        assert again.exit_code == 0, again.output
        assert "nothing to train" in again.output
        assert (reason in again.output) if reason else ("ranking them again" not in again.output)
        new = [r for r in _runs(tracking_uri, "ensemble")[1] if r.info.run_id not in before]
        assert sorted(r.data.tags["sweeper.method"] for r in new if r.data.tags["sweeper.method"] != "single") == methods
    assert len(_runs(tracking_uri, "trial")[1]) == 4  # nothing trained again
    ranked = CliRunner().invoke(main, ["rank", "e2e", "--tracking-uri", tracking_uri])
    assert "baseline error 0.05" in ranked.output and "top_k" in ranked.output


def test_growing_a_grid_trains_only_the_new_points(submitted, tracking_uri):
    grid, _ = submitted
    grid.write_text(GRID.replace("lambda: [0, 0.1]", "lambda: [0, 0.1, 1.0]"))
    grown = CliRunner().invoke(main, ["submit", str(grid), "--tracking-uri", tracking_uri, "--quiet"])
    assert grown.exit_code == 0, grown.output
    assert "4 of 6 trials already have results" in grown.output
    _, trials = _runs(tracking_uri, "trial")
    assert len(trials) == 6
    assert len({r.data.tags["sweeper.digest"] for r in trials}) == 6
    board = CliRunner().invoke(main, ["leaderboard", "e2e", "--tracking-uri", tracking_uri, "--format", "json"])
    assert board.exit_code == 0, board.output
    rows = json.loads(board.output)
    assert len(rows) == 6
    devs = [r["dev_error"] for r in rows]
    assert devs == sorted(devs)


def test_parent_run_holds_grid_leaderboard_and_report(shared):
    grid, result, tracking_uri = shared
    client, (sweep,) = _runs(tracking_uri, "sweep")
    names = {a.path for a in client.list_artifacts(sweep.info.run_id)}
    assert {"grid.yaml", "leaderboard.csv", "report.html", "trials.json", "summary.txt"} <= names
    assert sweep.info.status == "FINISHED"


def test_overhead_spreads_the_training_over_the_slots_that_ran_at_once(shared):
    grid, result, tracking_uri = shared
    _, (sweep,) = _runs(tracking_uri, "sweep")
    m = sweep.data.metrics
    assert m["slots"] == 2  # four one-trial tasks on the fixture's two CPUs
    train = sum(run.data.metrics["train_seconds"] for run in _runs(tracking_uri, "trial")[1])
    assert m["train_seconds"] == pytest.approx(train)
    assert m["overhead_per_trial_seconds"] == pytest.approx((m["wall_seconds"] - train / 2) / 4)
    assert m["overhead_per_trial_seconds"] > 0  # two slots: half the training hides in the wall time
    assert "on 2 slots" in result.output


def test_test_metrics_live_only_on_ensemble_runs_however_often_resubmitted(submitted, tracking_uri):
    grid, _ = submitted
    grid.write_text(GRID.replace("lambda: [0, 0.1]", "lambda: [0, 0.1, 0.3]"))
    for _ in range(2):  # grow once, then resubmit unchanged
        result = CliRunner().invoke(main, ["submit", str(grid), "--tracking-uri", tracking_uri, "--quiet"])
        assert result.exit_code == 0, result.output
    client, trials = _runs(tracking_uri, "trial")
    assert len(trials) == 6
    for run in trials:
        assert not [k for k in run.data.metrics if "test" in k], run.data.metrics
    _, ensembles = _runs(tracking_uri, "ensemble")
    methods = sorted(r.data.tags["sweeper.method"] for r in ensembles)
    assert methods == ["caruana", "caruana", "single", "single"]  # one pair per sweep that trained
    for run in ensembles:
        assert 0.0 <= run.data.metrics["test_error"] <= 1.0
        assert 0.0 <= run.data.metrics["dev_error"] <= 1.0
    versions = client.search_model_versions("name = 'e2e'")
    assert len(versions) == 2


def test_rank_and_report_read_the_sweep_back_from_mlflow(shared, tmp_path):
    grid, result, tracking_uri = shared
    ranked = CliRunner().invoke(main, ["rank", "e2e", "--tracking-uri", tracking_uri])
    assert ranked.exit_code == 0, ranked.output
    assert "caruana" in ranked.output and "single" in ranked.output
    assert "What the grid taught" in ranked.output
    out = tmp_path / "r.html"
    report = CliRunner().invoke(main, ["report", "e2e", "--tracking-uri", tracking_uri, "-o", str(out)])
    assert report.exit_code == 0, report.output
    assert out.read_text().count("<svg ") == 4
    missing = CliRunner().invoke(main, ["rank", "nope", "--tracking-uri", tracking_uri])
    assert missing.exit_code == 2 and "no sweep named 'nope'" in missing.output


def test_an_unreachable_tracking_server_stops_submit_before_ray_starts(write_grid, monkeypatch):
    import socket

    import sweeper.sweep as sweep

    started = []
    real = sweep.ensure_ray
    monkeypatch.setattr(sweep, "ensure_ray", lambda options: started.append(options) or real(options))
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
    from sweeper.runner import RunOptions
    from sweeper.spec import load_spec
    from sweeper.trackinguri import TrackingUnreachable

    # The library call, not the CLI: the CLI checks the store itself before it plans.
    the_plan = sweep.plan(load_spec(str(write_grid(GRID))))
    with pytest.raises(TrackingUnreachable, match="no answer from"):
        sweep.submit(the_plan, RunOptions(), uri, echo=lambda _: None, progress_enabled=False)
    assert started == []  # Ray's start (seconds) never began


def test_a_trial_bigger_than_any_node_of_the_local_ray_is_refused_at_once(ray_local, write_grid, tracking_uri):
    grid = write_grid(GRID + "resources: {cpus_per_trial: 3}\n")  # the fixture's Ray has 2 CPUs
    result = CliRunner().invoke(main, ["submit", str(grid), "--tracking-uri", tracking_uri, "--quiet"])
    assert result.exit_code == 2, result.output
    assert "cpus_per_trial 3 fits no node of the Ray cluster: the largest has 2 CPUs" in result.output
    assert "Traceback" not in result.output
