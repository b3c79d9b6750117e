"""The tracking server stopped mid-sweep: results wait in the journal and none is lost."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from servers import Server

import sweeper.sweep
from sweeper.cli import main
from sweeper.journal import Journal, TrialLogger, decode, encode

GRID = """\
name: outage
seed: 4
dataset: {name: moons, n_samples: 300, noise: 0.2}
grid:
  lambda: [0, 0.01, 0.1, 0.3, 1.0, 3.0]
fixed:
  architecture: [32, 16]
  epochs: 100
  batch_size: 32
"""


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setattr(TrialLogger, "MAX_DELAY", 2.0)  # retry often: the outage is short
    srv = Server(tmp_path)
    srv.start()
    yield srv
    srv.stop()


def _trial_digests(uri: str) -> list[str]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("outage")
    runs = client.search_runs([exp.experiment_id], "tags.`sweeper.kind` = 'trial'", max_results=1000)
    return [r.data.tags["sweeper.digest"] for r in runs]


def _stop_after_first_trial(server: Server, journal: Path, restart_after: float | None) -> threading.Thread:
    def outage():
        deadline = time.time() + 120
        while time.time() < deadline and not _has_trial(server.uri):
            time.sleep(0.2)
        server.stop()
        if restart_after is not None:
            time.sleep(restart_after)
            server.start()

    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    return thread


def _has_trial(uri: str) -> bool:
    try:
        return bool(_trial_digests(uri))
    except Exception:
        return False


def test_results_wait_in_the_journal_and_are_logged_when_the_server_returns(server, tmp_path, monkeypatch):
    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID)
    journal = tmp_path / "journal"
    outage = _stop_after_first_trial(server, journal, restart_after=4.0)
    args = ["submit", str(grid), "--local", "--tracking-uri", server.uri, "--journal", str(journal), "-q"]
    result = CliRunner().invoke(main, args)
    outage.join(timeout=120)
    assert result.exit_code == 0, result.output
    digests = _trial_digests(server.uri)
    assert len(digests) == 6 and len(set(digests)) == 6  # none lost, none twice
    assert not list(journal.glob("*.json"))


def test_results_left_unsent_are_logged_by_sync(server, tmp_path, monkeypatch):
    monkeypatch.setattr(sweeper.sweep, "LOG_WAIT_SECONDS", 3.0)
    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID)
    journal = tmp_path / "journal"
    outage = _stop_after_first_trial(server, journal, restart_after=None)
    args = ["submit", str(grid), "--local", "--tracking-uri", server.uri, "--journal", str(journal), "-q"]
    result = CliRunner().invoke(main, args)
    outage.join(timeout=120)
    assert "kept in the journal" in result.output
    assert result.exit_code == 1  # safe, but neither in MLflow nor ranked yet
    kept = len(list(journal.glob("*.json")))
    assert kept >= 1
    server.start()
    client = MlflowClient(tracking_uri=server.uri)
    (sweep,) = client.search_runs([client.get_experiment_by_name("outage").experiment_id],
                                  "tags.`sweeper.kind` = 'sweep'")
    assert sweep.info.status == "RUNNING"  # the server was away when the driver closed it
    # The driver ran in this test's process; a driver that has exited stands in for it.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    client.set_tag(sweep.info.run_id, "sweeper.driver", f"{socket.gethostname()}:{gone.stdout.strip()}")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # sync finds each result's store itself
    synced = CliRunner().invoke(main, ["sync", "--journal", str(journal)])
    assert synced.exit_code == 0, synced.output
    assert f"Logged {kept} journaled result(s); 0 left." in synced.output
    assert "Closed 1 sweep run(s)" in synced.output
    assert client.get_run(sweep.info.run_id).info.status == "FINISHED"
    digests = _trial_digests(server.uri)
    assert len(digests) == 6 and len(set(digests)) == 6
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "nothing to train" in again.output
    assert "since the last sweep did not finish ranking them" in again.output
    assert "Models to ship" in CliRunner().invoke(main, ["rank", "outage", "--tracking-uri", server.uri]).output


def test_a_journal_entry_round_trips_without_pickle(tmp_path):
    from core.config import TrainConfig
    from sweeper.results import run_trial
    from sweeper.spec import TrialSpec
    from core.datasets import load_dataset
    from core.splits import prepare
    import numpy as np

    data = prepare(load_dataset({"name": "moons", "n_samples": 100}, rng=np.random.default_rng(0)), rng=np.random.default_rng(0))
    trial = TrialSpec(TrainConfig(architecture=(4,), epochs=3, keep_prob=(0.9,)), 0, 7, "ab" * 32, (("keep_prob", (0.9,)),))
    result = run_trial(trial, data)
    back = decode(*encode(result))
    assert back.trial == trial
    assert back.outcome.history == result.outcome.history
    assert all(np.array_equal(back.outcome.params[k], v) for k, v in result.outcome.params.items())
    journal = Journal(tmp_path)
    key = journal.write({"tracking_uri": "x", "experiment": "e", "sweep_run_id": "r"}, result)
    ((k, context, again),) = list(journal.pending("x"))
    assert k == key and context["experiment"] == "e" and again.trial.digest == trial.digest
    with np.load(tmp_path / f"{key}.npz", allow_pickle=False) as npz:
        assert "params/W1" in npz.files


def _a_result():
    from core.config import TrainConfig
    from sweeper.results import failed_result
    from sweeper.spec import TrialSpec

    trial = TrialSpec(TrainConfig(architecture=(4,)), 0, 7, "cd" * 32, ())
    return failed_result(trial, "failed", "stands in for any result", time.time())


def test_closing_the_logger_says_why_it_waits_only_when_it_does(tmp_path):
    def slow(results, retries):  # a store that takes its time, then refuses
        time.sleep(2.5)
        raise ConnectionError("away")

    for send, expected in ((slow, 1), (lambda results, retries: ["run"] * len(results), 0)):
        said = []
        logger = TrialLogger(send, Journal(tmp_path / str(expected)), {"tracking_uri": "x"})
        logger.put(_a_result())
        unsent = logger.close(timeout=0.5, on_wait=lambda: said.append("waiting"))
        assert len(said) == expected and unsent == expected
