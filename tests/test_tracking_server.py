"""Sweeps logged to a real MLflow tracking server over HTTP: first on a sqlite store, then
on PostgreSQL through deploy/tracking-server.sh (basic auth, Host allow-list)."""

from __future__ import annotations

import contextlib
import glob
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from servers import free_port, server_env, stop_group, wait_for_http

from sweeper.cli import main

ROOT = Path(__file__).resolve().parents[1]
GRID = """\
name: served
seed: 11
dataset: {name: moons, n_samples: 200, noise: 0.2}
grid:
  lambda: [0, 0.1]
  initializer: [he, xavier]
fixed:
  architecture: [8, 4]
  epochs: 15
ensemble: {method: none}
"""
N_TRIALS = 4
START_TIMEOUT = 150
SCRIPT = ROOT / "deploy" / "tracking-server.sh"


def script_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """deploy/tracking-server.sh's settings: a sqlite store, artifacts and secrets under
    ``tmp_path``; then ``extra``."""
    return {
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts"),
        "MLFLOW_SECRETS_DIR": str(tmp_path / "secrets"),
        "PYTHON": sys.executable,
        **extra,
    }


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    wait_for_http(f"{url}/health", proc, START_TIMEOUT, log)


@contextlib.contextmanager
def server(cmd: list[str], log: Path, port: int, env: dict[str, str] | None = None):
    """Runs a server in its own process group; stops the whole group afterwards."""
    env = server_env(env)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        stop_group(proc)


def submit_and_check(grid: Path, url: str, artifacts: Path, tmp_path: Path) -> MlflowClient:
    """Runs the sweep in-process (--local) against ``url`` and checks every trial over HTTP."""
    result = CliRunner().invoke(main, ["submit", str(grid), "--local", "--tracking-uri", url, "--quiet"])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=url)
    exp = client.get_experiment_by_name("served")
    trials = client.search_runs([exp.experiment_id], "tags.`sweeper.kind` = 'trial'", max_results=100)
    assert len(trials) == N_TRIALS
    for run in trials:
        assert run.info.status == "FINISHED"
        assert {"dev_error", "train_error", "n_params"} <= set(run.data.metrics)
        assert "weights.npz" in [a.path for a in client.list_artifacts(run.info.run_id)]
    path = client.download_artifacts(trials[0].info.run_id, "weights.npz", str(tmp_path))
    with np.load(path, allow_pickle=False) as weights:
        assert weights["W1"].shape == (2, 8)
    # the server proxied the uploads into its own artifact store
    assert len(glob.glob(str(artifacts / "**" / "weights.npz"), recursive=True)) == N_TRIALS
    return client


def test_sweep_logs_to_a_tracking_server_over_http(write_grid, tmp_path):
    grid = write_grid(GRID)
    port = free_port()
    artifacts = tmp_path / "artifacts"
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(artifacts),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with server(cmd, tmp_path / "mlflow.log", port) as url:
        submit_and_check(grid, url, artifacts, tmp_path)


# -- PostgreSQL ------------------------------------------------------------------------


def test_tracking_server_script_keeps_sweeps_in_postgres(postgres, write_grid, tmp_path, monkeypatch):
    host, pg_port, user, pg_password, db = postgres
    grid = write_grid(GRID)
    port = free_port()
    artifacts = tmp_path / "artifacts"
    secrets_dir = tmp_path / "secrets"
    env = script_env(
        tmp_path,
        MLFLOW_BACKEND_STORE_URI=f"postgresql+psycopg://{user}@{host}:{pg_port}/{db}",
        PGPASSWORD=pg_password,
        MLFLOW_PORT=str(port),
        MLFLOW_WORKERS="1",
    )
    for name in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with server(["bash", str(SCRIPT)], tmp_path / "server.log", port, env) as url:
        # the script generated the admin password into a private file
        password_file = secrets_dir / "admin_password"
        assert password_file.stat().st_mode & 0o077 == 0
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
        assert refused.value.code == 401
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password_file.read_text().strip())
        submit_and_check(grid, url, artifacts, tmp_path)
    assert "runs in sweeper's store" in (tmp_path / "server.log").read_text()  # sweeper/serverstore.py

    import psycopg

    with psycopg.connect(host=host, port=pg_port, user=user, password=pg_password, dbname=db) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "WHERE t.key = 'sweeper.kind' AND t.value = 'trial'"
        ).fetchone()
    assert n == N_TRIALS  # the runs live in PostgreSQL


def test_tracking_server_script_names_a_bad_store_choice(tmp_path):
    env = server_env(script_env(tmp_path, SWEEPER_SERVER_STORE="fast"))
    out = subprocess.run(["bash", str(SCRIPT)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "SWEEPER_SERVER_STORE must be auto or off, not 'fast'" in out.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing started


def test_tracking_server_script_falls_back_to_mlflows_store_when_sweepers_does_not_load(tmp_path):
    # The plugin is installed, but its store does not import (as with an MLflow whose
    # internals moved): a sitecustomize on the server's path blocks the module.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "sitecustomize.py").write_text("import sys\nsys.modules['sweeper.serverstore'] = None\n")
    port = free_port()
    db = tmp_path / "mlflow.db"
    env = script_env(tmp_path, MLFLOW_PORT=str(port), PYTHONPATH=str(shadow))
    log = tmp_path / "server.log"
    with server(["bash", str(SCRIPT)], log, port, env):
        assert "runs in MLflow's store (sweeper's store does not load in" in log.read_text()
    with contextlib.closing(sqlite3.connect(db)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # MLflow's own


def test_tracking_server_script_keeps_mlflows_store_when_mlflows_job_runner_is_on(tmp_path):
    # MLflow's job store takes the backend URI as a plain database URI, so a `sweeper:`
    # URI would break MLflow's GenAI jobs: the script says so and keeps MLflow's store.
    env = server_env(script_env(tmp_path, MLFLOW_PORT=str(free_port()), MLFLOW_SERVER_ENABLE_JOB_EXECUTION="True"))
    proc = subprocess.Popen(["bash", str(SCRIPT)], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        line = ""
        while "MLflow on http" not in line:  # the line the script prints before it starts MLflow
            line = proc.stderr.readline()
            assert line, "the script ended before its startup line"
    finally:
        stop_group(proc)
    assert "runs in MLflow's store (MLflow's job runner is on)" in line
