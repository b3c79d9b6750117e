"""Per-trial cost of a sweep: sweeper vs Ray Tune's grid search vs a plain MLflow loop.

The same 64 tiny trials everywhere: lambda x keep_prob x initializer (4 x 4 x 4), a
[16, 8] ReLU network, Adam, one epoch, batch 64, on moons (1,000 examples, 600 to train),
every trial trained by sweeper's NumPy core with the same seed. Each contestant logs to
a sqlite MLflow store of its own in a temporary folder, in two states: an existing store
(its schema created beforehand by another process, as for every sweep after a store's
first) and a fresh one (the run pays creating the schema once per store: MLflow's
migrations, about 1.5 s here, for the plain loop and Tune's callback; for sweeper a copy
of the empty store MLflow made once in the user's cache, ``sweeper/newstore.py``, which
earlier runs on this machine have already made).

  sweeper            ``sweeper.sweep.submit`` with ``RunOptions(num_cpus=2)`` on local Ray:
                     journal, one MLflow run per trial (params, history, finals, tags,
                     weights.npz; whatever queued up is written in one transaction),
                     then the ensemble, registered models and the report.
  sweeper --local    the same in-process, without Ray (Ray's share of sweeper's cost).
  tune               ``tune.Tuner`` grid search, a function trainable running our core,
                     data through ``tune.with_parameters`` (the object store); default
                     settings, then ``reuse_actors=True``, then reuse plus
                     ``MLflowLoggerCallback`` on a fresh sqlite store.
  plain loop         one process, trial after trial: train, then ``mlflow.start_run`` and
                     ``log_params`` / ``log_metrics`` (the history's one epoch and finals).

Figures: wall seconds, wall per trial, and overhead per trial = (wall - sum of the
trials' own training seconds) / trials. Ray's startup is excluded (Ray is started before
the clock, as a long-lived cluster would be) except in the row that says it is included.
Then where sweeper's time goes: probes around its MLflow calls, journal, Ray tasks and
ranking step, and a bare Ray round trip for the task overhead.

Tune's default runs 16 of the trials (one initializer): without actor reuse each trial
starts a fresh actor, about 2 s each here; ``--full-tune`` runs all 64 (+2 min).

Run: ``python bench/sweep_throughput.py`` (about 2 min); ``--skip-tune`` leaves Tune out.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _probe import Probe  # noqa: E402

_common.ensure_project_on_path()

GOAL_MS = 20.0  # sweeper, wall per trial, all in
SPEEDUP_GOAL = 10.0  # and more than this many times faster than Tune with its MLflow callback
SLOTS = 2  # CPUs of the local Ray every contestant gets
GRID = """\
name: throughput
seed: 1
dataset: {name: moons, n_samples: 1000, noise: 0.2}
grid:
  lambda: [0, 0.01, 0.1, 1.0]
  keep_prob: [1.0, 0.9, 0.8, 0.7]
  initializer: [he, xavier, glorot, random]
fixed:
  architecture: [16, 8]
  optimizer: adam
  learning_rate: 0.01
  epochs: 1
  batch_size: 64
resources: {cpus_per_trial: 1}
"""
RAY_INIT = dict(include_dashboard=False, log_to_driver=False, logging_level="WARNING")
SWEEPER_PROBES = {
    "open store (Tracker.__init__)": "sweeper.tracking:Tracker.__init__",
    "Tracker.log_trials (logger thread)": "sweeper.tracking:Tracker.log_trials",
    "  SqlRunWriter.write (one transaction per call)": "sweeper.sqlstore:SqlRunWriter.write",
    "MlflowClient.create_run (driver: parent run, lookups)": "mlflow.tracking.client:MlflowClient.create_run",
    "MlflowClient.log_batch (driver: parent run, lookups)": "mlflow.tracking.client:MlflowClient.log_batch",
    "MlflowClient.log_artifact (driver: parent run, lookups)": "mlflow.tracking.client:MlflowClient.log_artifact",
    "MlflowClient.set_terminated (driver: parent run, lookups)": "mlflow.tracking.client:MlflowClient.set_terminated",
    "MlflowClient.log_text (driver: parent run, lookups)": "mlflow.tracking.client:MlflowClient.log_text",
    "MlflowClient.search_runs (driver: parent run, lookups)": "mlflow.tracking.client:MlflowClient.search_runs",
    "journal write (driver)": "sweeper.journal:Journal.write",
    "journal remove (logger thread)": "sweeper.journal:Journal.remove",
    "execute (Ray tasks, all trials)": "sweeper.sweep:execute",
    "wait for logger after last result": "sweeper.journal:TrialLogger.close",
    "ensemble + models + report (_finish)": "sweeper.sweep:_finish",
    "  ship (ensembles, registered models)": "sweeper.finalize:ship",
    "  report_html": "sweeper.finalize:report_html",
    "finish_sweep": "sweeper.tracking:Tracker.finish_sweep",
}


def silent(_: str) -> None:
    pass


def make_plan():
    from sweeper.spec import parse_spec
    from sweeper.sweep import plan

    the_plan = plan(parse_spec(GRID, "throughput.yaml"))
    assert len(the_plan.trials) == 64, len(the_plan.trials)
    return the_plan


def run_sweeper(the_plan, tmp: Path, local: bool = False, probe_targets=None):
    """One submission on the store in ``tmp``; returns (wall, train seconds, outcome, probe)."""
    from sweeper.runner import RunOptions
    from sweeper.sweep import submit

    targets = dict(probe_targets or {})
    targets["collect"] = "sweeper.runner:_collect"  # called once per Ray task
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    with Probe(targets) as probe, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        outcome = submit(
            the_plan,
            RunOptions(local=local, num_cpus=SLOTS),
            uri,
            echo=silent,
            progress_enabled=False,
            journal_dir=tmp / "journal",
        )
        wall = time.perf_counter() - t0
    assert outcome.counts.get("finished", 0) == 64, outcome.counts
    probe.train = outcome.train_seconds
    return wall, outcome.train_seconds, outcome, probe


def _train_point(data, base, lambd, keep_prob, initializer, seed):
    from core.train import train

    config = dataclasses.replace(base, lambd=lambd, keep_prob=keep_prob, initializer=initializer)
    return train(
        config,
        data.X_train,
        data.y_train,
        data.X_dev,
        data.y_dev,
        data.n_classes,
        np.random.default_rng(seed),
    )


def run_tune(the_plan, tmp: Path, reuse: bool, mlflow_cb: bool, n_trials: int = 64):
    """Tune's grid search; ``n_trials`` 16 keeps only the first initializer."""
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    trial0 = the_plan.trials[0]
    base, seed = trial0.config, trial0.seed
    data = the_plan.data[(True, "float32")].without_test()
    axes = dict(the_plan.spec.grid)
    if n_trials == 16:
        axes["initializer"] = axes["initializer"][:1]

    def trainable(config, data=None):
        out = _train_point(
            data, base, config["lambda"], config["keep_prob"], config["initializer"], seed
        )
        tune.report(
            {
                "train_error": out.train_error,
                "dev_error": out.dev_error,
                "train_seconds": out.seconds,
            }
        )

    callbacks = (
        [
            MLflowLoggerCallback(
                tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}", experiment_name="throughput"
            )
        ]
        if mlflow_cb
        else []
    )
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, data=data), {"cpu": 1}),
        param_space={k: tune.grid_search(list(v)) for k, v in axes.items()},
        tune_config=tune.TuneConfig(reuse_actors=reuse),
        run_config=tune.RunConfig(
            name="throughput", storage_path=str(tmp / "tune"), verbose=0, callbacks=callbacks
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        results = tuner.fit()
        wall = time.perf_counter() - t0
    assert len(results) == n_trials and not results.errors, results.errors
    return wall, sum(r.metrics["train_seconds"] for r in results)


def run_plain(the_plan, tmp: Path):
    import mlflow

    data = the_plan.data[(True, "float32")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
        mlflow.set_experiment("throughput")
        train_s = 0.0
        for trial in the_plan.trials:
            c = trial.config
            out = _train_point(data, c, c.lambd, c.keep_prob, c.initializer, trial.seed)
            train_s += out.seconds
            with mlflow.start_run(run_name=trial.label()):
                mlflow.log_params({k: str(v) for k, v in trial.params().items()})
                for epoch in range(out.epochs_run):
                    mlflow.log_metrics({k: v[epoch] for k, v in out.history.items()}, step=epoch)
                mlflow.log_metrics(
                    {
                        "train_error": out.train_error,
                        "dev_error": out.dev_error,
                        "train_seconds": out.seconds,
                    }
                )
        wall = time.perf_counter() - t0
    mlflow.set_tracking_uri("")
    return wall, train_s


def ray_round_trip(data, n: int = 40) -> tuple[float, float]:
    """(ms per sequential task, ms per task with 2 in flight) of a no-op task on the data."""
    import ray

    @ray.remote(num_cpus=1)
    def noop(d):
        return 0

    ref = ray.put(data)
    ray.get([noop.remote(ref) for _ in range(4)])  # warm the workers
    t0 = time.perf_counter()
    for _ in range(n):
        ray.get(noop.remote(ref))
    seq = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    ray.get([noop.remote(ref) for _ in range(n)])
    par = (time.perf_counter() - t0) / n
    return seq * 1e3, par * 1e3


def main() -> None:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument("--skip-tune", action="store_true", help="leave the Ray Tune rows out")
    ap.add_argument(
        "--full-tune",
        action="store_true",
        help="Tune's default (no actor reuse) on all 64 trials, not 16 (+2 min)",
    )
    ap.add_argument("--repeats", type=int, default=2, help="timed sweeper runs (Ray up); best")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's console tables off (verbose=0)
    importlib.import_module("mlflow")  # it sets its loggers' level on import: quiet them after
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    import ray

    _common.print_header("sweep_throughput: 64 one-epoch trials, 2 CPUs")
    the_plan = make_plan()
    n = len(the_plan.trials)
    rows, breakdown = [], None

    def row(name, wall, train_s, note="", trials=n):
        rows.append(
            [
                name,
                trials,
                wall,
                wall / trials * 1e3,
                train_s,
                (wall - train_s) / trials * 1e3,
                note,
            ]
        )
        print(f"  {name}: {wall:.2f} s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        ray.init(num_cpus=SLOTS, **RAY_INIT)
        ray_start = time.perf_counter() - t0
        # Warm-up on a throwaway store: imports, Ray workers, MLflow's first schema.
        run_sweeper(the_plan, _store(tmp, "warm", ready=False))
        runs = [
            run_sweeper(the_plan, _store(tmp, f"s{i}"), probe_targets=SWEEPER_PROBES)
            for i in range(args.repeats)
        ]
        wall, train_s, outcome, breakdown = min(runs, key=lambda r: r[0])
        row(
            "sweeper (Ray up)",
            wall,
            train_s,
            f"best of {args.repeats}; rank step {outcome.rank_seconds:.2f} s",
        )
        fresh = [run_sweeper(the_plan, _store(tmp, f"f{i}", ready=False)) for i in range(args.repeats)]
        wall, train_s, outcome, _ = min(fresh, key=lambda r: r[0])
        row("sweeper (Ray up), fresh store", wall, train_s, f"best of {args.repeats}")
        rt_seq, rt_par = ray_round_trip(the_plan.data[(True, "float32")].without_test())
        if not args.skip_tune and importlib.util.find_spec("ray.tune") is None:
            print('  Ray Tune is not installed (pip install "ray[tune]"): its rows are skipped')
        elif not args.skip_tune:
            k = 64 if args.full_tune else 16
            wall, train_s = run_tune(the_plan, _store(tmp, "tune_default"), False, False, k)
            row("tune default", wall, train_s, "" if k == 64 else "16 of the 64 (--full-tune)", k)
            for name, reuse, cb in (
                ("tune reuse_actors", True, False),
                ("tune reuse + MLflowLoggerCallback", True, True),
            ):
                wall, train_s = run_tune(the_plan, _store(tmp, name.replace(" ", "_")), reuse, cb)
                row(name, wall, train_s)
        ray.shutdown()
        wall, train_s, _, _ = run_sweeper(the_plan, _store(tmp, "local"), local=True)
        row("sweeper --local (no Ray)", wall, train_s)
        wall, train_s = run_plain(the_plan, _store(tmp, "plain"))
        row("plain loop + mlflow.start_run", wall, train_s)
        wall, train_s = run_plain(the_plan, _store(tmp, "plain_fresh", ready=False))
        row("plain loop, fresh store", wall, train_s)
        wall, train_s, _, _ = run_sweeper(the_plan, _store(tmp, "cold"))
        row("sweeper, Ray startup included", wall, train_s, f"ray.init alone {ray_start:.2f} s")

    print()
    print(
        _common.table(
            [
                "contestant",
                "trials",
                "wall s",
                "wall ms/trial",
                "train s (sum)",
                "overhead ms/trial",
                "note",
            ],
            rows,
        )
    )
    per_trial = rows[0][3]
    print(
        f"\nsweeper wall per trial, Ray up, existing store: {per_trial:.1f} ms (goal <= {GOAL_MS:g}: "
        f"{_common.verdict(per_trial, GOAL_MS)}); fresh store: {rows[1][3]:.1f} ms; "
        f"Ray startup included: {rows[-1][3]:.1f} ms"
    )
    by_name = {r[0]: r[3] for r in rows}
    print("per trial, against sweeper (Ray up, existing store) in this run:")
    for name, ms in by_name.items():
        if name != "sweeper (Ray up)":
            print(f"  {name} / sweeper = {ms / per_trial:.1f}x")
    tune_mlflow = by_name.get("tune reuse + MLflowLoggerCallback")
    if tune_mlflow:
        speedup = tune_mlflow / per_trial
        print(f"sweeper vs Tune with reuse + MLflowLoggerCallback: {speedup:.1f}x faster "
              f"(goal > {SPEEDUP_GOAL:g}x: {'meets' if speedup > SPEEDUP_GOAL else 'MISSES'})")
    print(f"\nwhere sweeper's time goes ({n} trials; the logger thread overlaps the Ray tasks):")
    print(_common.table(["probe", "calls", "seconds", "ms/trial"], breakdown.rows(n)))
    tasks = int(breakdown.stats["collect"][0])
    if tasks:
        # Slot time the trial phase did not spend training, per task. Not each task's
        # submit-to-result time less its training: the runner queues a slot's next task
        # while the last one runs, so that time includes the wait in the queue.
        phase = breakdown.stats["execute (Ray tasks, all trials)"][1]
        per_chunk = (SLOTS * phase - breakdown.train) / tasks * 1e3
        size = n / tasks
        print(
            f"Ray task overhead inside sweeper: {tasks} tasks of ~{size:.0f} trials, "
            f"{per_chunk:.1f} ms of slot time per task not spent training "
            f"({SLOTS} slots x trial phase - training) = {per_chunk / size:.1f} ms/trial"
        )
    print(
        f"bare Ray no-op task with the data as argument: {rt_seq:.2f} ms sequential, "
        f"{rt_par:.2f} ms each with 2 in flight"
    )
    if breakdown.missing:
        print(f"(probes not found in this version: {', '.join(breakdown.missing)})")
    _common.maybe_rerun_unset(args)


def _store(tmp: Path, name: str, ready: bool = True) -> Path:
    """A folder for one contestant; ``ready``: its ./mlflow.db already has MLflow's schema.

    The schema is made by another process, so no engine or store is cached in this one.
    """
    import subprocess

    folder = tmp / name
    folder.mkdir()
    if ready:
        code = "import sys, mlflow; mlflow.MlflowClient(sys.argv[1]).search_experiments()"
        subprocess.run([sys.executable, "-c", code, f"sqlite:///{folder / 'mlflow.db'}"],
                       check=True, capture_output=True)
    return folder


if __name__ == "__main__":
    main()
