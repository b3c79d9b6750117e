"""Bad invocations end with a clear message and exit status 2, never a traceback, a hang
or a store the user did not ask for; an MLflow failure ends cleanly too."""

from __future__ import annotations

import json
import os
import time

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from servers import free_port

from sweeper.cli import main

GRID = """\
name: cli-errors
seed: 5
dataset: {name: circles, n_samples: 200}
grid:
  lambda: [0, 0.1]
fixed:
  architecture: [3]
  epochs: 5
"""


def _clean_exit(result, code: int) -> None:
    """Exit status ``code`` through Click, not an exception escaping the command."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A real sqlite store holding one finished sweep of GRID: (uri, runs by kind)."""
    folder = tmp_path_factory.mktemp("swept")
    grid = folder / "grid.yaml"
    grid.write_text(GRID)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    args = ["submit", str(grid), "--local", "--tracking-uri", uri, "--quiet", "--journal", str(folder / "journal")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("cli-errors").experiment_id])
    by_kind: dict[str, list] = {}
    for run in runs:
        by_kind.setdefault(run.data.tags.get("sweeper.kind"), []).append(run)
    return uri, by_kind


# -- the tracking URI ------------------------------------------------------------------------

COMMANDS = {
    "submit": ["submit", "grid.yaml", "--local"],
    "leaderboard": ["leaderboard", "cli-errors"],
    "rank": ["rank", "cli-errors"],
    "report": ["report", "cli-errors"],
    "sync": ["sync"],
    "ui": ["ui"],
}


@pytest.fixture
def no_ui(monkeypatch):
    """`sweeper ui` replaces the process with MLflow's server: here that would be the test run."""

    def refuse(*args, **kwargs):
        raise AssertionError("sweeper ui started MLflow's UI")

    monkeypatch.setattr(os, "execve", refuse)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "uri, expected",
    [
        ("mlflow.db", "'mlflow.db' is not a tracking URI; for a local file use sqlite:///mlflow.db"),
        ("foo://bar", "MLflow has no tracking store for scheme 'foo'"),
        ("file:///tmp/sweeper-mlruns", "maintenance mode"),
        ("sweeper:sqlite:///mlflow.db", "pass 'sqlite:///mlflow.db'"),
    ],
    ids=["plain-path", "unknown-scheme", "file-store", "server-plugin-uri"],
)
def test_a_bad_tracking_uri_is_a_usage_error_in_every_command(write_grid, tmp_path, no_ui, command, uri, expected):
    write_grid(GRID)
    result = CliRunner().invoke(main, [*COMMANDS[command], "--tracking-uri", uri])
    _clean_exit(result, 2)
    assert "--tracking-uri" in result.output and expected in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.yaml"]  # no store, no mlruns, no journal


def test_a_bad_tracking_uri_from_the_environment_names_the_variable(write_grid, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "mlflow.db")
    result = CliRunner().invoke(main, ["submit", str(write_grid(GRID)), "--local"])
    _clean_exit(result, 2)
    assert "Invalid value for '--tracking-uri' (env var: 'MLFLOW_TRACKING_URI'): 'mlflow.db'" in result.output
    assert "sqlite:///mlflow.db" in result.output


@pytest.mark.parametrize("command", ["leaderboard", "rank", "report", "sync"])
def test_read_only_commands_never_create_a_store(tmp_path, command):
    db = tmp_path / "elsewhere" / "other.db"
    result = CliRunner().invoke(main, [*COMMANDS[command], "--tracking-uri", f"sqlite:///{db}"])
    _clean_exit(result, 2)
    assert f"no MLflow store at {db}" in result.output
    assert not db.parent.exists()


@pytest.mark.parametrize(
    "command, scheme",
    # ui serves a database only: a tracking server has its own UI
    [(c, s) for c in ("leaderboard", "rank", "report", "sync", "ui") for s in ("http", "postgresql+psycopg")
     if (c, s) != ("ui", "http")],
)
def test_a_store_that_does_not_answer_fails_fast_in_every_command(no_ui, command, scheme):
    uri = f"{scheme}://127.0.0.1:{free_port()}" + ("/mlflow" if scheme != "http" else "")
    start = time.monotonic()
    result = CliRunner().invoke(main, [*COMMANDS[command], "--tracking-uri", uri])
    _clean_exit(result, 2)
    assert time.monotonic() - start < 20
    what = "tracking server" if scheme == "http" else "tracking database"
    assert f"cannot reach the MLflow {what}" in result.output and "127.0.0.1" in result.output


def test_a_store_that_is_no_sqlite_database_is_refused_before_any_trial(write_grid, tmp_path):
    grid = write_grid(GRID)
    result = CliRunner().invoke(main, ["submit", str(grid), "--local", "--tracking-uri", f"sqlite:///{grid}"])
    _clean_exit(result, 2)
    assert f"{grid} is not an SQLite database" in result.output
    assert grid.read_text() == GRID


# -- which sweep ---------------------------------------------------------------------------


def test_a_trial_or_chosen_model_run_id_stands_for_its_sweep(swept):
    uri, runs = swept
    (sweep,) = runs["sweep"]
    by_name = CliRunner().invoke(main, ["leaderboard", "cli-errors", "--tracking-uri", uri, "--format", "json"])
    assert by_name.exit_code == 0, by_name.output
    trial = runs["trial"][0].info.run_id
    by_trial = CliRunner().invoke(main, ["leaderboard", trial, "--tracking-uri", uri, "--format", "json"])
    assert by_trial.exit_code == 0, by_trial.output
    assert json.loads(by_trial.stdout) == json.loads(by_name.stdout)
    assert f"run {trial} is a trial of sweep {sweep.info.run_id}" in by_trial.stderr
    model = runs["ensemble"][0].info.run_id
    ranked = CliRunner().invoke(main, ["rank", model, "--tracking-uri", uri])
    assert ranked.exit_code == 0, ranked.output
    assert f"Sweep {sweep.info.run_id} of 'cli-errors'" in ranked.output
    assert f"run {model} is a chosen model of sweep {sweep.info.run_id}" in ranked.output


def test_a_run_that_is_no_sweep_is_a_clear_error(swept):
    uri, _ = swept
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("not sweeper's"))
    result = CliRunner().invoke(main, ["report", run.info.run_id, "--tracking-uri", uri])
    _clean_exit(result, 2)
    assert f"run {run.info.run_id}" in result.output and "is not a sweep" in result.output


def test_an_unknown_sweep_lists_only_experiments_holding_sweeps(swept):
    uri, _ = swept
    client = MlflowClient(tracking_uri=uri)
    client.create_run(client.create_experiment("no sweeps here"))
    result = CliRunner().invoke(main, ["leaderboard", "cli-error", "--tracking-uri", uri])
    _clean_exit(result, 2)
    assert "no sweep named 'cli-error'" in result.output
    listed = result.output.split("sweeps there: ")[1]
    assert "'cli-errors'" in listed and listed.strip().endswith("did you mean 'cli-errors'?")
    assert "Default" not in listed and "no sweeps here" not in listed


def test_an_mlflow_failure_ends_the_command_without_a_traceback(swept):
    uri, _ = swept
    client = MlflowClient(tracking_uri=uri)
    # a sweep run whose driver died before it logged trials.json
    client.create_run(client.create_experiment("cut-short"), tags={"sweeper.kind": "sweep"})
    result = CliRunner().invoke(main, ["leaderboard", "cut-short", "--tracking-uri", uri])
    _clean_exit(result, 1)
    assert result.output.startswith("Error: MLflow") and "trials.json" in result.output


# -- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, option",
    [
        (["gradcheck", "grid.yaml", "--examples", "0"], "--examples"),
        (["gradcheck", "grid.yaml", "--examples", "-3"], "--examples"),
        (["submit", "grid.yaml", "--local", "--num-cpus", "0"], "--num-cpus"),
        (["submit", "grid.yaml", "--local", "--num-cpus", "-1"], "--num-cpus"),
        (["submit", "grid.yaml", "--local", "--timeout", "-5"], "--timeout"),
        (["submit", "grid.yaml", "--local", "--timeout", "0"], "--timeout"),
        (["submit", "grid.yaml", "--local", "--timeout", "nan"], "--timeout"),
        (["submit", "grid.yaml", "--local", "--timeout", "inf"], "--timeout"),
        (["submit", "grid.yaml", "--local", "--max-trials", "-1"], "--max-trials"),
        (["rank", "cli-errors", "--limit", "0"], "--limit"),
        (["rank", "cli-errors", "--limit", "-1"], "--limit"),
        (["ui", "--port", "0"], "--port"),
    ],
    ids=lambda v: "_".join(v) if isinstance(v, list) else None,
)
def test_numbers_out_of_range_are_usage_errors(write_grid, tmp_path, no_ui, args, option):
    write_grid(GRID)
    result = CliRunner().invoke(main, args)
    _clean_exit(result, 2)
    assert f"Invalid value for '{option}'" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.yaml"]


def test_the_trial_cap_is_checked_before_any_trial_is_built(write_grid, tracking_uri):
    values = ", ".join(str(i / 1000) for i in range(100))
    huge = GRID.replace("lambda: [0, 0.1]", f"lambda: [{values}]\n  l1: [{values}]\n  beta1: [{values}]")
    start = time.monotonic()
    result = CliRunner().invoke(main, ["submit", str(write_grid(huge)), "--tracking-uri", tracking_uri])
    _clean_exit(result, 2)
    assert "expands to 1000000 trials, over the cap of 1000" in result.output
    assert "data circles" not in result.output  # refused before the data was loaded and the trials built
    assert time.monotonic() - start < 30  # building them takes minutes


# -- nothing to ship -------------------------------------------------------------------------


def test_a_sweep_where_no_trial_finished_says_nothing_was_shipped(write_grid, tracking_uri):
    diverging = GRID.replace("lambda: [0, 0.1]", "learning_rate: [1.0e+6, 1.0e+7]").replace(
        "epochs: 5", "epochs: 20\n  optimizer: gd"
    )
    result = CliRunner().invoke(main, ["submit", str(write_grid(diverging)), "--local", "--tracking-uri", tracking_uri, "-q"])
    assert result.exit_code == 0, result.output  # diverging is an outcome, not an error
    line = "Models to ship: none, since no trial finished (grid points: 2 diverged); nothing was tested or registered."
    assert line in result.output
    ranked = CliRunner().invoke(main, ["rank", "cli-errors", "--tracking-uri", tracking_uri])
    assert ranked.exit_code == 0, ranked.output
    assert line in ranked.output
