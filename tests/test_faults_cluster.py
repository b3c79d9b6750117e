"""Faults around a sweep, done for real: a node removed from a Ray cluster, the driver
killed with SIGKILL, the driver interrupted with Ctrl-C. Helpers and the checks every
test ends with are in ``test_faults.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import ray  # first: it puts its vendored psutil on sys.path
import psutil
from mlflow import MlflowClient

from sweeper.runner import RunOptions
from sweeper.spec import load_spec
from sweeper.sweep import plan
from test_faults import (
    COMPLETE,
    RAY_QUIET,
    WAIT_S,
    check_store,
    cli,
    digests_of,
    in_thread,
    mid_trial,
    quick_grid,
    quiet_submit,
    slow_grid,
    statuses,
    sweep_runs,
    trial_runs,
    wait_for,
)

# -- the driver killed, the driver interrupted -------------------------------------------


class Driver:
    """``sweeper submit`` in its own process group, with a Ray of its own.

    Its Ray lives under a private RAY_TMPDIR, so it never joins another Ray on this
    machine, and every process it started can be found (and stopped) by that variable.
    """

    def __init__(self, grid: Path, uri: str, tmp_path: Path):
        self.ray_tmp = tempfile.mkdtemp(prefix="swf", dir="/tmp")  # short: Ray's socket paths
        self.out, self.err = tmp_path / "driver.out", tmp_path / "driver.err"
        env = {**os.environ, "RAY_TMPDIR": self.ray_tmp}
        args = [sys.executable, "-m", "sweeper.cli", "submit", str(grid), "--tracking-uri", uri, "--num-cpus", "2", "--quiet"]
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=out, stderr=err, start_new_session=True)

    def processes(self) -> list[psutil.Process]:
        """Every live process of this driver's Ray (and the driver), found by RAY_TMPDIR."""
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get("RAY_TMPDIR") == self.ray_tmp:
                    found.append(proc)
        return found

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        for proc in self.processes():  # workers sit in process groups of their own
            with contextlib.suppress(psutil.Error):
                proc.kill()
        wait_for(lambda: not self.processes(), "the killed driver's Ray processes to go away", timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None or self.processes():
            self.kill()
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


@contextlib.contextmanager
def driver(grid: Path, uri: str, tmp_path: Path):
    MlflowClient(tracking_uri=uri).search_experiments()  # create the store's tables before two writers race
    d = Driver(grid, uri, tmp_path)
    try:
        yield d
    finally:
        d.close()


def n_complete(uri: str, name: str) -> int:
    return sum(r.data.tags.get("sweeper.status") in COMPLETE for r in trial_runs(uri, name))


def test_a_killed_driver_leaves_nothing_that_a_second_submit_does_not_repair(ray_local, write_grid, tracking_uri, tmp_path):
    grid = write_grid(slow_grid("driver-kill", 6))
    digests = digests_of(grid)
    with driver(grid, tracking_uri, tmp_path) as d:
        wait_for(lambda: n_complete(tracking_uri, "driver-kill") >= 2 or d.proc.poll() is not None,
                 "two trials of the first submission in MLflow", timeout=90)
        assert d.proc.poll() is None, f"the driver ended before it was killed:\n{d.output()}"
        d.kill()
    done_first = {r.data.tags["sweeper.digest"] for r in trial_runs(tracking_uri, "driver-kill")
                  if r.data.tags["sweeper.status"] in COMPLETE}
    assert 2 <= len(done_first) < 6, len(done_first)
    (first,) = sweep_runs(tracking_uri, "driver-kill")
    assert first.info.status == "RUNNING"  # what a SIGKILLed driver leaves behind

    again = cli("submit", grid, "--tracking-uri", tracking_uri, "--quiet")
    assert again.exit_code == 0, again.output
    assert "left RUNNING" in again.output, again.output
    # Results journaled but not yet in MLflow when the driver died count as done too.
    found = re.search(r"(\d+) of 6 trials already have results; training the other (\d+)", again.output)
    assert found, again.output
    skipped, trained = map(int, found.groups())
    assert skipped >= len(done_first) and skipped + trained == 6, (skipped, trained, len(done_first))
    final = check_store(tracking_uri, "driver-kill", digests)
    assert statuses(final) == {"finished": 6}
    first, second = sweep_runs(tracking_uri, "driver-kill")
    assert first.info.status == "KILLED" and first.data.tags["sweeper.status"] == "killed"
    by_second = {d for d, run in final.items() if run.data.tags["sweeper.sweep"] == second.info.run_id}
    assert len(by_second) == trained and not by_second & done_first
    assert not [r for r in trial_runs(tracking_uri, "driver-kill") if r.info.status == "RUNNING"]


def test_a_result_mlflow_took_just_before_the_driver_died_is_not_logged_twice(write_grid, tracking_uri, tmp_path):
    from sweeper.journal import DEFAULT_JOURNAL, Journal

    grid = write_grid(quick_grid("journal", "lambda: [0, 0.1]"))
    the_plan = plan(load_spec(str(grid)))
    first = quiet_submit(the_plan, RunOptions(local=True), tracking_uri)
    # The driver's worst instant to die: MLflow holds the finished run, but the journal
    # entry is not removed yet. This is exactly what a SIGKILL there leaves on disk.
    context = {"tracking_uri": tracking_uri, "experiment": "journal", "sweep_run_id": first.sweep_run_id}
    journal = Journal(tmp_path / DEFAULT_JOURNAL)
    journal.write(context, first.results[0])
    quiet_submit(the_plan, RunOptions(local=True), tracking_uri)
    final = check_store(tracking_uri, "journal", [t.digest for t in the_plan.trials])
    assert statuses(final) == {"finished": 2}
    assert not list(journal.pending())


def test_ctrl_c_marks_running_trials_killed_and_a_second_submit_finishes(ray_local, write_grid, tracking_uri, tmp_path):
    grid = write_grid(slow_grid("ctrl-c", 6))
    digests = digests_of(grid)
    with driver(grid, tracking_uri, tmp_path) as d:
        wait_for(lambda: n_complete(tracking_uri, "ctrl-c") >= 1 or d.proc.poll() is not None,
                 "a first trial in MLflow", timeout=90)
        assert d.proc.poll() is None, f"the driver ended before Ctrl-C:\n{d.output()}"
        os.killpg(d.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        rc = d.proc.wait(timeout=WAIT_S)
        assert rc == 130, d.output()
        assert "Submit again to resume" in d.output()
        wait_for(lambda: not d.processes(), "the interrupted driver's Ray to shut down", timeout=30)
    killed = [r for r in trial_runs(tracking_uri, "ctrl-c") if r.data.tags["sweeper.status"] == "killed"]
    assert killed, "no running trial was recorded as killed"
    for run in killed:
        assert run.info.status == "KILLED"
        assert "interrupted" in run.data.tags["sweeper.reason"]
    (parent,) = sweep_runs(tracking_uri, "ctrl-c")
    assert parent.info.status == "KILLED"

    again = cli("submit", grid, "--tracking-uri", tracking_uri, "--quiet")
    assert again.exit_code == 0, again.output
    assert "left RUNNING" not in again.output, "Ctrl-C left runs RUNNING"
    final = check_store(tracking_uri, "ctrl-c", digests)
    assert statuses(final) == {"finished": 6}
    assert not [r for r in trial_runs(tracking_uri, "ctrl-c") if r.info.status == "RUNNING"]


# -- a node removed from a cluster mid-sweep ---------------------------------------------


@pytest.fixture
def two_node_cluster():
    """A head without CPUs and two 1-CPU worker nodes, this process connected to it.

    Puts back the session's local Ray afterwards (as conftest's ``ray_local`` starts it)
    if one was running, so the tests after this one find what they expect.
    """
    from ray.cluster_utils import Cluster

    was_initialized = ray.is_initialized()
    ray.shutdown()
    ray_tmp = tempfile.mkdtemp(prefix="swc", dir="/tmp")  # keep its address file to ourselves
    old_tmp = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = ray_tmp
    cluster = None
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, **RAY_QUIET)
        yield cluster, workers
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        if old_tmp is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = old_tmp
        shutil.rmtree(ray_tmp, ignore_errors=True)
        if was_initialized:
            ray.init(num_cpus=2, include_dashboard=False, **RAY_QUIET)


def test_a_node_removed_mid_sweep_loses_no_trial(two_node_cluster, write_grid, tracking_uri):
    from ray._private import ray_constants

    cluster, (victim, survivor) = two_node_cluster
    grid = write_grid(slow_grid("node-loss", 4))
    the_plan = plan(load_spec(str(grid)))
    future = in_thread(lambda: quiet_submit(the_plan, RunOptions(), tracking_uri))
    raylet = psutil.Process(victim.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)
    mid_trial(raylet)
    removed_at_ms = time.time() * 1000
    cluster.remove_node(victim)
    outcome = future.result(timeout=120)
    assert outcome.counts == {"finished": 4}, outcome.counts
    final = check_store(tracking_uri, "node-loss", [t.digest for t in the_plan.trials])
    assert statuses(final) == {"finished": 4}
    for run in final.values():
        node = run.data.tags["sweeper.node"]
        if node.endswith(victim.node_id):
            assert run.info.end_time <= removed_at_ms, "a trial claims to have finished on a removed node"
    after = [r for r in final.values() if r.info.end_time > removed_at_ms]
    assert after and all(r.data.tags["sweeper.node"].endswith(survivor.node_id) for r in after)
