"""Faults inside a sweep, done for real: a killed worker, trials that raise, diverge or
hang, and reproducibility across scheduling orders. ``test_faults_cluster.py`` has the
faults around it: a lost node, a killed driver, Ctrl-C.

Real local Ray, real sqlite MLflow stores under tmp_path, real processes and signals;
nothing is mocked. Every test ends with the same checks (:func:`check_store`): every
trial of the grid is in MLflow, no result is lost, and no digest has two complete runs.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
import time
from pathlib import Path

import ray  # noqa: F401 - first: it puts its vendored psutil on sys.path
import psutil
from click.testing import CliRunner
from mlflow import MlflowClient

from sweeper.cli import main
from sweeper.runner import RunOptions
from sweeper.spec import load_spec
from sweeper.sweep import plan, submit

WAIT_S = 60
COMPLETE = ("finished", "diverged")
RAY_QUIET = {"log_to_driver": False, "logging_level": "WARNING"}


def slow_grid(name: str, n_trials: int, epochs: int = 8000) -> str:
    """n trials of a second or more each on one core: full batch, many epochs, tiny data."""
    lambdas = ", ".join(str(round(0.01 * i, 2)) for i in range(n_trials))
    return f"""\
name: {name}
seed: 5
dataset: {{name: blobs, n_samples: 150, classes: 3}}
grid:
  lambda: [{lambdas}]
fixed:
  architecture: [16]
  epochs: {epochs}
  batch_size: null
resources: {{max_retries: 2}}
"""


def quick_grid(name: str, axes: str, **fixed: str) -> str:
    """A grid of a few 5-epoch trials on blobs; ``axes`` are the grid's YAML lines."""
    settings = {"architecture": "[6]", "epochs": "5", **fixed}
    fixed_lines = "".join(f"  {k}: {v}\n" for k, v in settings.items() if f"{k}:" not in axes)
    return (
        f"name: {name}\nseed: 3\ndataset: {{name: blobs, n_samples: 150, classes: 3}}\n"
        f"grid:\n  {axes}\nfixed:\n{fixed_lines}"
    )


# -- helpers ---------------------------------------------------------------------------


def digests_of(grid: Path) -> list[str]:
    return [t.digest for t in plan(load_spec(str(grid))).trials]


def trial_runs(uri: str, name: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], "tags.`sweeper.kind` = 'trial'", max_results=1000)


def sweep_runs(uri: str, name: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    return client.search_runs([exp.experiment_id], "tags.`sweeper.kind` = 'sweep'", order_by=["start_time ASC"])


def check_store(uri: str, name: str, digests: list[str]) -> dict[str, object]:
    """Asserts every trial is in MLflow and none has two complete runs.

    Returns:
        Digest -> the run that counts for it: the complete one, else the latest.
    """
    by_digest: dict[str, list] = {}
    for run in trial_runs(uri, name):
        by_digest.setdefault(run.data.tags["sweeper.digest"], []).append(run)
    lost = [d[:12] for d in digests if d not in by_digest]
    assert not lost, f"results lost: {len(lost)} trial(s) of the grid have no run in MLflow: {lost}"
    dupes = {
        d[:12]: [r.data.tags["sweeper.status"] for r in runs]
        for d, runs in by_digest.items()
        if sum(r.data.tags.get("sweeper.status") in COMPLETE for r in runs) > 1
    }
    assert not dupes, f"duplicates: digests with more than one complete run: {dupes}"
    return {
        d: max(runs, key=lambda r: (r.data.tags.get("sweeper.status") in COMPLETE, r.info.start_time))
        for d, runs in by_digest.items()
    }


def statuses(final: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for run in final.values():
        status = run.data.tags["sweeper.status"]
        out[status] = out.get(status, 0) + 1
    return out


def wait_for(predicate, what: str, timeout: float = WAIT_S, every: float = 0.2):
    """Polls ``predicate`` until it returns something truthy; fails with ``what``."""
    deadline, last_error = time.time() + timeout, None
    while time.time() < deadline:
        try:
            value = predicate()
        except Exception as exc:  # noqa: BLE001 - another process is writing the store; ask again
            value, last_error = None, exc
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last error: {last_error!r})")


def trial_workers(root: psutil.Process) -> list[psutil.Process]:
    """Ray worker processes under ``root`` that are executing a sweeper task right now."""
    found = []
    for proc in root.children(recursive=True):
        with contextlib.suppress(psutil.Error, IndexError):
            if proc.cmdline()[0].startswith("ray::run_chunk"):
                found.append(proc)
    return found


def mid_trial(root: psutil.Process) -> list[psutil.Process]:
    """Waits until workers under ``root`` are inside a trial: seen running it twice, 0.2 s apart."""

    def still_running():
        first = trial_workers(root)
        if not first:
            return None
        time.sleep(0.2)
        return [p for p in trial_workers(root) if p in first]

    return wait_for(still_running, "a Ray worker executing ray::run_chunk")


def in_thread(fn) -> concurrent.futures.Future:
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future


def quiet_submit(the_plan, options: RunOptions, uri: str):
    return submit(the_plan, options, uri, echo=lambda message: None, progress_enabled=False)


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


# -- a worker killed mid-trial ---------------------------------------------------------


def test_a_worker_killed_mid_trial_runs_the_trial_again(ray_local, write_grid, tracking_uri):
    grid = write_grid(slow_grid("worker-kill", 4))
    the_plan = plan(load_spec(str(grid)))
    future = in_thread(lambda: quiet_submit(the_plan, RunOptions(), tracking_uri))
    victim = mid_trial(psutil.Process())[0]
    victim.send_signal(signal.SIGKILL)
    outcome = future.result(timeout=120)
    assert outcome.counts == {"finished": 4}, outcome.counts
    final = check_store(tracking_uri, "worker-kill", [t.digest for t in the_plan.trials])
    assert statuses(final) == {"finished": 4}
    nodes = [run.data.tags["sweeper.node"] for run in final.values()]
    assert not any(f":{victim.pid}:" in node or node.endswith(f":{victim.pid}") for node in nodes), nodes


# -- a trial that raises, one that diverges, one that hangs ---------------------------


def test_a_trial_that_raises_is_a_failed_run_and_the_others_finish(ray_local, write_grid, tracking_uri):
    # NumPy refuses to allocate the 14 TiB of weights: a genuine MemoryError in the worker.
    grid = write_grid(quick_grid("raises", "architecture: [[1000000000000], [6], [4]]"))
    result = cli("submit", grid, "--tracking-uri", tracking_uri, "--quiet")
    assert result.exit_code == 1, result.output
    assert "failed: architecture=[1000000000000]" in result.output
    final = check_store(tracking_uri, "raises", digests_of(grid))
    assert statuses(final) == {"failed": 1, "finished": 2}
    (failed,) = [r for r in final.values() if r.data.tags["sweeper.status"] == "failed"]
    assert failed.info.status == "FAILED"
    assert failed.data.params["architecture"] == "[1000000000000]"
    assert "MemoryError" in failed.data.tags["sweeper.reason"]
    assert "Unable to allocate" in failed.data.tags["sweeper.reason"]


def test_a_diverging_trial_ends_diverged_and_the_sweep_goes_on(ray_local, write_grid, tracking_uri):
    grid = write_grid(quick_grid("nan", "learning_rate: [0.01, 1.0e+6, 0.02]", optimizer="gd"))
    result = cli("submit", grid, "--tracking-uri", tracking_uri, "--quiet")
    assert result.exit_code == 0, result.output
    final = check_store(tracking_uri, "nan", digests_of(grid))
    assert statuses(final) == {"diverged": 1, "finished": 2}
    (diverged,) = [r for r in final.values() if r.data.tags["sweeper.status"] == "diverged"]
    assert diverged.data.params["learning_rate"] == "1000000.0"
    assert diverged.info.status == "FAILED" and diverged.data.tags["sweeper.reason"]
    again = cli("submit", grid, "--tracking-uri", tracking_uri, "--quiet")
    assert again.exit_code == 0 and "nothing to train" in again.output, again.output
    check_store(tracking_uri, "nan", digests_of(grid))


def test_a_hanging_trial_is_ended_by_the_per_trial_timeout(ray_local, write_grid, tracking_uri):
    grid = write_grid(quick_grid("hang", "epochs: [5, 10000000, 10]", batch_size="null"))
    t0 = time.time()
    result = cli("submit", grid, "--tracking-uri", tracking_uri, "--quiet", "--timeout", "3")
    assert time.time() - t0 < 90, "the hanging trial was not ended by the 3 s timeout"
    assert result.exit_code == 1, result.output
    final = check_store(tracking_uri, "hang", digests_of(grid))
    assert statuses(final) == {"timed_out": 1, "finished": 2}
    (hung,) = [r for r in final.values() if r.data.tags["sweeper.status"] == "timed_out"]
    assert hung.data.params["epochs"] == "10000000"
    assert hung.info.status == "FAILED"
    assert hung.info.end_time - hung.info.start_time < 30_000, "ended long after its 3 s"
    assert "timeout of 3 s (stopped by its worker after" in hung.data.tags["sweeper.reason"]
    # The worker really stopped, not left burning a core.
    wait_for(lambda: not trial_workers(psutil.Process()), "the timed-out worker to stop", timeout=30)


STUCK = """\
name: stuck
seed: 3
dataset: {name: blobs, n_samples: 200000, classes: 3}
seeds: 2
grid:
  architecture: [[256, 256], [4]]
  batch_size: [1, 64]
fixed: {epochs: 1}
exclude:
  - {architecture: [256, 256], batch_size: 64}
  - {architecture: [4], batch_size: 1}
"""


def test_a_trial_stuck_in_one_epoch_is_killed_and_the_next_trials_do_not_pay_for_it(
        ray_local, write_grid, tracking_uri, monkeypatch):
    """Both slots get a trial whose one epoch takes tens of seconds (120,000 steps of one
    example), so only the driver can end it; the quick trials sent after the kills start
    on new workers, which must not count against their own timeout."""
    import sweeper.runner

    monkeypatch.setattr(sweeper.runner, "KILL_GRACE_S", 6.0)
    grid = write_grid(STUCK)
    result = cli("submit", grid, "--tracking-uri", tracking_uri, "--quiet", "--timeout", "2")
    assert result.exit_code == 1, result.output
    final = check_store(tracking_uri, "stuck", digests_of(grid))
    assert statuses(final) == {"timed_out": 2, "finished": 2}
    for run in final.values():
        stuck = run.data.params["batch_size"] == "1"
        assert run.data.tags["sweeper.status"] == ("timed_out" if stuck else "finished")
        if stuck:
            assert "timeout of 2 s (killed by the driver: no answer 6 s past it)" in run.data.tags["sweeper.reason"]


# -- reproducibility across scheduling orders ------------------------------------------

REPRO = """\
name: repro
seed: 11
dataset: {name: moons, n_samples: 200, noise: 0.2}
grid:
  keep_prob: [1.0, 0.8]
  optimizer: [adam, momentum]
fixed:
  architecture: [8, 4]
  learning_rate: 0.05
  epochs: 30
  batch_size: 32
"""


def test_same_grid_and_seed_give_bitwise_identical_metrics_in_any_order(ray_local, write_grid, tmp_path):
    the_plan = plan(load_spec(str(write_grid(REPRO))))
    ways = {"local": RunOptions(local=True), "chunk1": RunOptions(chunk_size=1), "chunk3": RunOptions(chunk_size=3)}
    seen = {}
    for way, options in ways.items():
        uri = f"sqlite:///{tmp_path / way}.db"
        outcome = quiet_submit(the_plan, options, uri)
        assert outcome.counts == {"finished": 4}, (way, outcome.counts)
        final = check_store(uri, "repro", [t.digest for t in the_plan.trials])
        client = MlflowClient(tracking_uri=uri)
        seen[way] = {
            digest: (
                run.data.metrics["dev_error"],
                run.data.metrics["train_cost"],
                [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, "cost"), key=lambda m: m.step)],
            )
            for digest, run in final.items()
        }
    assert all(len(history) == 30 for _, _, history in seen["local"].values())
    assert seen["chunk1"] == seen["local"]
    assert seen["chunk3"] == seen["local"]
