"""The command line as a user types it."""

from __future__ import annotations

import json

import pytest

from click.testing import CliRunner
from mlflow import MlflowClient

from sweeper.cli import main

SMALL = """\
name: cli
seed: 3
dataset: {name: blobs, n_samples: 150, classes: 3}
grid:
  lambda: [0, 0.05]
  activation: [relu, tanh]
fixed:
  architecture: [6]
  epochs: 5
"""


def test_validate_lists_trials(write_grid):
    result = CliRunner().invoke(main, ["validate", str(write_grid(SMALL))])
    assert result.exit_code == 0, result.output
    assert "4 trials" in result.output
    assert result.output.count("activation=") == 4


def test_bad_grid_exits_2_with_every_problem_and_no_traceback(write_grid):
    bad = SMALL.replace("lambda: [0, 0.05]", "lambda: [-1, 0.05]\n  keep_prb: [0.5]").replace("epochs: 5", "epochs: 0")
    result = CliRunner().invoke(main, ["validate", str(write_grid(bad))])
    assert result.exit_code == 2
    out = result.output
    assert "Traceback" not in out
    assert "grid.lambda[0]" in out and "-1" in out
    assert "keep_prb" in out and "did you mean keep_prob" in out
    assert "fixed.epochs" in out
    assert "grid.yaml:5" in out  # the line of lambda's first value


def test_missing_dataset_file_is_a_clear_error(write_grid):
    grid = write_grid(SMALL.replace("{name: blobs, n_samples: 150, classes: 3}", "{path: nowhere.csv, target: y}"))
    result = CliRunner().invoke(main, ["submit", str(grid), "--dry-run"])
    assert result.exit_code == 2
    assert "nowhere.csv" in result.output and "Traceback" not in result.output


def test_dry_run_runs_nothing(write_grid, tracking_uri, tmp_path):
    result = CliRunner().invoke(main, ["submit", str(write_grid(SMALL)), "--dry-run", "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert result.output.count("lambda=") == 4
    assert not (tmp_path / "mlflow.db").exists()


def test_trial_cap_needs_yes(write_grid, tracking_uri):
    result = CliRunner().invoke(main, ["submit", str(write_grid(SMALL)), "--max-trials", "3", "--tracking-uri", tracking_uri])
    assert result.exit_code == 2
    assert "--yes" in result.output


def test_gradcheck_checks_each_structural_combination(write_grid):
    result = CliRunner().invoke(main, ["gradcheck", str(write_grid(SMALL))])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "activation=" in line]
    assert len(lines) == 4
    assert all(" fine " in line for line in lines)
    assert "Overall: fine" in result.output


def test_gradcheck_catches_a_wrong_derivative_when_the_grid_starts_from_zeros(write_grid, monkeypatch):
    import core.network

    right = core.network._times_derivative

    def wrong(dA, H, activation, xp, zeros):  # tanh' as 1 - A instead of 1 - A^2
        if activation == "tanh":
            return dA * (1.0 - xp.tanh(H))
        return right(dA, H, activation, xp, zeros)

    grid = SMALL.replace("activation: [relu, tanh]", "initializer: [zeros, he]").replace(
        "architecture: [6]", "architecture: [6]\n  activation: tanh"
    )
    monkeypatch.setattr(core.network, "_times_derivative", wrong)
    result = CliRunner().invoke(main, ["gradcheck", str(write_grid(grid))])
    assert result.exit_code == 1, result.output
    assert "Overall: bug" in result.output and "Traceback" not in result.output


def test_local_mode_and_ray_give_bitwise_identical_metrics(ray_local, write_grid, tmp_path):
    grid = str(write_grid(SMALL))
    metrics = {}
    for mode in ("local", "ray"):
        uri = f"sqlite:///{tmp_path / mode}.db"
        args = ["submit", grid, "--tracking-uri", uri, "--quiet"] + (["--local"] if mode == "local" else [])
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name("cli")
        runs = client.search_runs([exp.experiment_id], "tags.`sweeper.kind` = 'trial'")
        metrics[mode] = {
            r.data.tags["sweeper.digest"]: (r.data.metrics["dev_error"], r.data.metrics["train_cost"]) for r in runs
        }
    assert len(metrics["local"]) == 4
    assert metrics["local"] == metrics["ray"]


def test_a_diverging_trial_is_recorded_and_the_sweep_goes_on(write_grid, tracking_uri):
    grid = write_grid(SMALL.replace("lambda: [0, 0.05]", "learning_rate: [0.01, 1.0e+6]").replace("activation: [relu, tanh]", "optimizer: [gd]"))
    result = CliRunner().invoke(main, ["submit", str(grid), "--local", "--tracking-uri", tracking_uri, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "diverged" in result.output
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name("cli")
    runs = client.search_runs([exp.experiment_id], "tags.`sweeper.kind` = 'trial'")
    status = sorted(r.data.tags["sweeper.status"] for r in runs)
    assert status == ["diverged", "finished"]
    diverged = next(r for r in runs if r.data.tags["sweeper.status"] == "diverged")
    assert diverged.info.status == "FAILED" and diverged.data.tags["sweeper.reason"]
    board = CliRunner().invoke(main, ["leaderboard", "cli", "--tracking-uri", tracking_uri, "--format", "json"])
    rows = json.loads(board.output)
    assert [r["status"] for r in rows] == ["finished", "diverged"]


def test_gpu_trials_without_a_gpu_stop_unless_cpu_fallback_is_allowed(write_grid, tracking_uri):
    from core.backend import cupy_available

    if cupy_available():  # this test is about machines without one
        return
    gpu = SMALL + "resources: {gpus_per_trial: 0.25}\n"
    result = CliRunner().invoke(main, ["submit", str(write_grid(gpu)), "--local", "--tracking-uri", tracking_uri])
    assert result.exit_code == 2
    assert "gpus_per_trial is 0.25" in result.output and "allow_cpu_fallback" in result.output
    assert "Traceback" not in result.output
    allowed = SMALL + "resources: {gpus_per_trial: 0.25, allow_cpu_fallback: true}\n"
    result = CliRunner().invoke(main, ["submit", str(write_grid(allowed)), "--local", "--tracking-uri", tracking_uri, "-q"])
    assert result.exit_code == 0, result.output
    assert "running every trial on CPU" in result.output
    assert "Ran 4 trials (4 finished)" in result.output


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


def test_unreachable_ray_address_is_found_before_any_trial(write_grid, tracking_uri, tmp_path):
    import time

    start = time.time()
    address = f"127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(main, ["submit", str(write_grid(SMALL)), "--address", address, "--tracking-uri", tracking_uri])
    assert result.exit_code == 2, result.output
    assert f"cannot reach the Ray cluster at {address}" in result.output
    assert "Traceback" not in result.output
    assert time.time() - start < 60
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name("cli")
    assert exp is None or not client.search_runs([exp.experiment_id])


def test_unreachable_tracking_server_is_found_before_any_trial(write_grid):
    uri = f"http://127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(main, ["submit", str(write_grid(SMALL)), "--local", "--tracking-uri", uri])
    assert result.exit_code == 2, result.output
    assert "cannot reach the MLflow tracking server" in result.output and uri in result.output
    assert "Traceback" not in result.output


CSV_GRID = """\
name: csv
dataset: {path: data.csv, target: label}
grid:
  lambda: [0]
fixed:
  architecture: [4]
"""


@pytest.mark.parametrize(
    "csv, expected",
    [
        ("a,b,y\n1,2,0\n3,4,1\n", ["data.csv", "no target column 'label'", "'a', 'b', 'y'"]),  # no target column
        ("a,b,label\n1,x,0\n3,4,1\n5,6,0\n7,8,1\n9,1,0\n", ["data.csv", "'b'", "row 2 'x'"]),  # text cell
        ("a,b,label\n1,,0\n3,4,1\n5,6,0\n7,8,1\n9,1,0\n", ["data.csv", "column 'b' has empty cells: row 2"]),  # empty cell
        ("a,b,label\n1,2,0\n3,4,0\n5,6,0\n7,8,0\n9,1,0\n", ["data.csv", "one class"]),
        ("a,b,label\n1,2,0\n3,4,1\n", ["too small for its split", "2 examples"]),
    ],
    ids=["no-target-column", "text-cell", "empty-cell", "one-class", "too-small"],
)
def test_bad_csv_data_is_a_clear_error_with_exit_2(write_grid, tmp_path, csv, expected):
    (tmp_path / "data.csv").write_text(csv)
    result = CliRunner().invoke(main, ["validate", str(write_grid(CSV_GRID))])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in expected:
        assert fragment in result.output, (fragment, result.output)
