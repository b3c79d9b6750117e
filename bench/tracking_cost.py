"""Per-trial MLflow cost: sweeper's ``Tracker`` vs MLflow's client, one batch or one call per value.

One trial record: 100 epochs x 5 history metrics (cost, train_error, dev_error,
learning_rate, grad_norm_1), the final metrics, every setting as a param, sweeper's tags
and the weights as ``weights.npz``, logged as a nested run under a sweep run. Ways:

  log_trial, one at a time   sweeper's ``Tracker.log_trial``: what a trial costs when it
                             arrives alone (long trials). On a SQL store one transaction
                             with the whole run; over HTTP five JSON requests (create, one
                             batch, weights.npz, history.csv, terminate).
  log_trials, backlog of N   ``Tracker.log_trials`` with N waiting, as sweeper's logger
                             thread sends whatever queued while it was busy: one
                             transaction for all N on a SQL store; over HTTP
                             ``tracking.SENDERS`` runs in flight at once.
  one log_batch per trial    MLflow's client: ``create_run`` (tags), one ``log_batch``
                             (params, every history value, finals), ``log_artifact``,
                             ``set_terminated``: what a user would write.
  per-value                  ``create_run``, then ``log_param`` per setting, ``log_metric``
                             per history point and final, ``log_artifact``,
                             ``set_terminated``: the naive client loop.
  what-if                    ``tracking.history_points`` 50 and 200 (a store's cost grows
                             with every metric row; the default is 200 on a database, 25
                             on a tracking server), sweeper's record sent through MLflow's
                             client instead of as JSON, and the backlog with one sender.

on two stores: a sqlite file (``sqlite:///...``), and a real ``mlflow server`` on a free
127.0.0.1 port over HTTP (started here as a subprocess with a sqlite backend and proxied
artifacts, run as deploy/tracking-server.sh runs it: MLflow's Flask app on one gunicorn
worker with 4 threads, runs stored through sweeper's store (``sweeper:`` URI,
sweeper/serverstore.py); stopped at the end). Then the same ``log_trial`` on that server,
on the same server with MLflow's own store, and on a plain ``mlflow server`` (MLflow's
default: its FastAPI app on uvicorn, one worker, MLflow's store), taking turns trial by
trial (``--skip-plain-server`` skips it). Stores and experiments are
created before the clock. Times are per trial: medians over the calls; CPU is this
process's (the client's) and, over HTTP, the server's process group's, per trial.

In a sweep (``--sweep-trials``, 16 by default; 0 skips it): the cost above is what a
trial's record takes to send, but sweeper sends it on a logger thread while the next
trials train. The same 16 trials (digits, [128, 64], 100 epochs, 4 x 4 grid) are submitted
through ``sweeper.sweep.submit`` on a local Ray with 2 CPUs (started and warmed before the
clock) to a fresh sqlite store and to the tracking server, alternating for three rounds.
Figure: the trial phase (Ray tasks plus draining the logger) per trial on each store, and
what the server adds over sqlite. Here the server shares the 2 cores with the trials, so
its CPU is paid for in slower training; on a machine of its own it would not be.

Run: ``python bench/tracking_cost.py`` (about 2 min); ``--trials N`` logs more per case.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _probe import Probe  # noqa: E402

_common.ensure_project_on_path()

GOALS_MS = {"sqlite": 25.0, "http": 80.0}  # sweeper's log_trial, per trial
EPOCHS, METRICS = 100, ("cost", "train_error", "dev_error", "learning_rate", "grad_norm_1")
GRID = f"""\
name: tracking-cost
seed: 1
dataset: {{name: moons, n_samples: 300, noise: 0.2}}
grid: {{lambda: [0]}}
fixed: {{architecture: [8], epochs: {EPOCHS}, batch_size: null}}
ensemble: {{method: none}}
"""
CLIENT_PROBES = {
    f"{name}": f"mlflow.tracking.client:MlflowClient.{name}"
    for name in (
        "create_run",
        "log_batch",
        "log_param",
        "log_metric",
        "log_artifact",
        "set_terminated",
    )
}
CLIENT_PROBES["sweeper's SQL transaction"] = "sweeper.sqlstore:SqlRunWriter.write"
CLIENT_PROBES["sweeper's JSON request"] = "sweeper.reststore:RestRunWriter._call"
CLIENT_PROBES["sweeper's artifact PUT"] = "sweeper.reststore:RestRunWriter._upload"


def trial_result():
    """A real trial's result, its history cut to the 5 metrics above."""
    from sweeper.results import run_trial
    from sweeper.spec import parse_spec
    from sweeper.sweep import plan

    the_plan = plan(parse_spec(GRID, "tracking-cost.yaml"))
    trial = the_plan.trials[0]
    result = run_trial(trial, the_plan.data[(True, "float32")].without_test())
    history = {k: result.outcome.history[k] for k in METRICS}
    assert all(len(v) == EPOCHS for v in history.values())
    outcome = dataclasses.replace(result.outcome, history=history)
    return the_plan.spec, dataclasses.replace(result, outcome=outcome)


def log_per_value(tracker, sweep_run_id: str, result) -> None:
    """The same record as ``log_trial``, one client call per value."""
    from mlflow.entities import Metric

    from sweeper.runcontent import param_strings, trial_metrics

    client = tracker.client
    tags = {
        "mlflow.parentRunId": sweep_run_id,
        "sweeper.kind": "trial",
        "sweeper.digest": result.trial.digest,
        "sweeper.status": result.status,
    }
    run_id = client.create_run(
        tracker.experiment_id, tags=tags, run_name=result.trial.label()
    ).info.run_id
    for key, value in param_strings(result.trial.params()).items():
        client.log_param(run_id, key, value)
    for m in trial_metrics(result):
        assert isinstance(m, Metric)
        client.log_metric(run_id, m.key, m.value, m.timestamp, m.step)
    buf = io.BytesIO()
    np.savez(buf, **result.outcome.params)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.npz"
        path.write_bytes(buf.getvalue())
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED")


def log_one_batch(tracker, sweep_run_id: str, result, points: int | None = EPOCHS) -> None:
    """A trial through MLflow's public client: ``create_run``, one ``log_batch``,
    ``log_artifact``, ``set_terminated``, with every epoch of the history (``points``
    None: the record sweeper itself logs, thinned on a server)."""
    with _points(tracker, points or tracker.history_points):
        record = tracker.trial_record(sweep_run_id, result)
    tracker._write_run(record)


def group_cpu_seconds(pgid: int | None) -> float:
    """User + system CPU of every live process in a process group (the server's), from /proc."""
    if pgid is None:
        return 0.0
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def measure(uri: str, spec, result, trials: int, naive_trials: int, server_pgid: int | None = None):
    """{way: (ms per trial list, probe rows, trials, client CPU ms/trial, server CPU ms/trial)}."""
    from sweeper.tracking import Tracker

    tracker = Tracker(uri, f"cost-{int(time.time() * 1000)}")
    sweep_run_id = tracker.start_sweep(spec, trials, 0, {})
    tracker.log_trial(sweep_run_id, result)  # warm-up: first-call imports, connections
    what_if = max(3, trials // 2)
    clock = [result.ended_ms]

    def fresh():
        """The trial result ending now, after every earlier one, as real trials do. (One
        end time for all would pile every metric row into the same part of the store's
        (key, timestamp, step, run) index and slow every store down as it grows.)"""
        clock[0] = max(clock[0] + 1, int(time.time() * 1000))
        return dataclasses.replace(result, started_ms=clock[0] - 1000, ended_ms=clock[0])

    def log_backlog(s, r):
        answers = tracker.log_trials(s, [fresh() for _ in range(trials)])
        assert all(isinstance(a, str) for a in answers), answers[:1]

    ways = {
        # (function, calls, trials per call, patches)
        "log_trial, one at a time": (tracker.log_trial, trials, 1, ()),
        f"log_trials, backlog of {trials}": (log_backlog, 3, trials, ()),
        "one log_batch per trial (MLflow client)": (lambda s, r: log_one_batch(tracker, s, r), trials, 1, ()),
        "what-if: sweeper's record through MLflow's client": (
            lambda s, r: log_one_batch(tracker, s, r, None), what_if, 1, ()),
        "per-value": (lambda s, r: log_per_value(tracker, s, r), naive_trials, 1, ()),
        "what-if: one at a time, history <= 50 points/metric": (tracker.log_trial, what_if, 1, (_points(tracker, 50),)),
        "what-if: one at a time, history <= 200 points/metric": (tracker.log_trial, what_if, 1, (_points(tracker, 200),)),
        "what-if: backlog, 1 sender": (log_backlog, 2, trials, (_senders(tracker, 1),)),
    }
    # Calls of all ways interleaved, each way's spread evenly over the run, so that a
    # machine that speeds up or slows down midway (it is shared) favours none of them.
    schedule = sorted(((i + 0.5) / n, way) for way, (_, n, _, _) in ways.items() for i in range(n))
    probes = {way: Probe(CLIENT_PROBES) for way in ways}
    times: dict[str, list[float]] = {way: [] for way in ways}
    cpu = {way: [0.0, 0.0] for way in ways}  # client, server seconds
    for _, way in schedule:
        fn, _, per_call, patches = ways[way]
        with contextlib.ExitStack() as stack, probes[way]:
            for patch in patches:
                stack.enter_context(patch)
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))  # MLflow's run URLs
            arg = fresh()
            cpu0, server0, t0 = time.process_time(), group_cpu_seconds(server_pgid), time.perf_counter()
            fn(sweep_run_id, arg)
            times[way].append((time.perf_counter() - t0) * 1e3 / per_call)
            cpu[way][0] += time.process_time() - cpu0
            cpu[way][1] += group_cpu_seconds(server_pgid) - server0
    out = {}
    for way, (_, n, per_call, _) in ways.items():
        done = n * per_call
        out[way] = (times[way], probes[way].rows(done), done, cpu[way][0] * 1e3 / done, cpu[way][1] * 1e3 / done)
    tracker.finish_sweep(sweep_run_id, "FINISHED", {}, {})
    tracker.close()
    return out


def _points(tracker, points: int):
    """The tracker logging at most ``points`` per history metric (``tracking.history_points``)."""
    return mock.patch.object(tracker, "history_points", points)


def _senders(tracker, n: int):
    """The tracker sending ``n`` runs at a time to a tracking server."""
    from concurrent.futures import ThreadPoolExecutor

    return mock.patch.object(tracker, "_pool", ThreadPoolExecutor(n))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GTHREAD = ["--gunicorn-opts", "--worker-class gthread --threads 4"]
SERVERS = {
    # deploy/tracking-server.sh and local-cluster.sh: MLflow's Flask app on gunicorn threads,
    # runs through sweeper's store (sweeper/serverstore.py: each log_batch one transaction)
    "deploy": ("sweeper", GTHREAD),
    # the same server on MLflow's own SQL store (SWEEPER_SERVER_STORE=off)
    "deploy, MLflow's store": ("mlflow", GTHREAD),
    # plain `mlflow server`: MLflow's FastAPI app on uvicorn. With 2+ workers every
    # kept-alive request waits ~43 ms on a delayed ACK (uvicorn #3149), so 1.
    "uvicorn": ("mlflow", []),
}


@contextlib.contextmanager
def mlflow_server(folder: Path, workers: int = 1, timeout: float = 150.0, backend: str | None = None,
                  kind: str = "deploy"):
    """``mlflow server`` on a free loopback port in its own process group, run as ``kind``
    of :data:`SERVERS` says; yields its URL and the group's id."""
    port = free_port()
    store, options = SERVERS[kind]
    database = backend or f"sqlite:///{folder / 'server.db'}"
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sweeper:{database}" if store == "sweeper" else database,
        "--registry-store-uri",
        database,
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--workers",
        str(workers),
        *options,
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = folder / "server.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no /health from {url}:\n{log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield url, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


SWEEP_GRID = """\
name: {name}
seed: 2
dataset: {{name: digits}}
grid: {{lambda: [0, 0.01, 0.1, 1.0], initializer: [he, xavier, glorot, random]}}
fixed: {{architecture: [128, 64], optimizer: adam, epochs: 100, batch_size: 64}}
ensemble: {{method: none}}
"""
SWEEP_PROBES = {"trials": "sweeper.sweep:_run_trials", "drain": "sweeper.journal:TrialLogger.close"}


def in_sweep(stores: dict[str, str], n_trials: int, tmp: Path, rounds: int = 3) -> None:
    """The same trials through ``submit`` on each store (see the module's docstring)."""
    import ray

    from sweeper.runner import RunOptions
    from sweeper.spec import parse_spec
    from sweeper.sweep import plan, submit

    cpus = 2
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        _common.warm_workers(cpus)
        got: dict[str, list[tuple[float, float, float, float]]] = {store: [] for store in stores}
        for r in range(rounds):
            for store, uri in stores.items():
                name = f"in-sweep-{store}-{r}"  # a new experiment: every trial trains
                the_plan = plan(parse_spec(SWEEP_GRID.format(name=name), "in-sweep.yaml"))
                trials = the_plan.trials[:n_trials]
                the_plan = dataclasses.replace(the_plan, trials=trials)
                if store == "sqlite":
                    uri = f"sqlite:///{tmp / f'{name}.db'}"
                with Probe(SWEEP_PROBES) as probe:
                    t0 = time.perf_counter()
                    outcome = submit(the_plan, RunOptions(), uri, echo=lambda _: None,
                                     progress_enabled=False, journal_dir=tmp / f"journal-{name}")
                    wall = time.perf_counter() - t0
                assert outcome.counts.get("finished") == len(trials), outcome.counts
                phase, drain = probe.stats["trials"][1], probe.stats["drain"][1]
                got[store].append((phase, outcome.train_seconds, drain, wall))
    finally:
        ray.shutdown()
    rows, per_trial = [], {}
    for store, runs in got.items():
        phase, train, drain, wall = min(runs)  # the round with the fastest trial phase
        per_trial[store] = phase / n_trials * 1e3
        rows.append([store, n_trials, phase, per_trial[store], train, drain * 1e3, wall / n_trials * 1e3])
    print(f"-- in a sweep: {n_trials} trials of 100 epochs, local Ray with {cpus} CPUs --")
    print(_common.table(
        ["store", "trials", "trial phase s", "trial phase ms/trial", "train s (sum)", "drain ms",
         "submit ms/trial"], rows))
    print("trial phase: the Ray tasks and draining the logger; drain: the wait for the logger "
          "after the last result; train: the trials' own training, which the server's CPU slows "
          "when it shares the cores")
    if "http" in per_trial and "sqlite" in per_trial:
        extra = per_trial["http"] - per_trial["sqlite"]
        print(f"the tracking server adds {extra:.1f} ms per trial to the trial phase over sqlite, "
              f"its CPU on these cores included (goal for tracking over HTTP <= "
              f"{GOALS_MS['http']:g} ms: {_common.verdict(extra, GOALS_MS['http'])})")
    print(flush=True)


def compare_servers(servers: dict[str, tuple[str, int]], spec, result, trials: int) -> None:
    """sweeper's ``log_trial`` on each server, one trial at a time, the servers taking
    turns trial by trial (so a slower minute of the machine slows all of them alike)."""
    from sweeper.tracking import Tracker

    trackers = {}
    for kind, (url, _) in servers.items():
        tracker = Tracker(url, f"servers-{kind}-{int(time.time() * 1000)}")
        run_id = tracker.start_sweep(spec, trials, 0, {})
        tracker.log_trial(run_id, result)  # warm-up
        trackers[kind] = (tracker, run_id)
    times = {kind: [] for kind in servers}
    cpu = dict.fromkeys(servers, 0.0)
    for i in range(trials):
        for kind, (tracker, run_id) in trackers.items():
            ended = int(time.time() * 1000) + i
            record = dataclasses.replace(result, started_ms=ended - 1000, ended_ms=ended)
            server0, t0 = group_cpu_seconds(servers[kind][1]), time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                tracker.log_trial(run_id, record)
            times[kind].append((time.perf_counter() - t0) * 1e3)
            cpu[kind] += group_cpu_seconds(servers[kind][1]) - server0
    for tracker, run_id in trackers.values():
        tracker.finish_sweep(run_id, "FINISHED", {}, {})
        tracker.close()
    rows, med = [], {}
    for kind in servers:
        lo, med[kind] = _common.summary(times[kind])
        store, options = SERVERS[kind]
        rows.append([kind, "sweeper's" if store == "sweeper" else "MLflow's", " ".join(options) or "(MLflow's default)",
                     trials, med[kind], lo, cpu[kind] * 1e3 / trials])
    print("-- the same trials, one at a time, on the server as deploy/ runs it, on that server with "
          "MLflow's own store, and on a plain `mlflow server`, taking turns --")
    print(_common.table(["server", "store", "options", "trials", "median ms/trial", "min ms/trial",
                         "server CPU ms/trial"], rows))
    for other in servers:
        if other != "deploy" and "deploy" in servers:
            print(f"deploy's server / {other}: {med['deploy'] / med[other]:.2f}x the time, "
                  f"{cpu['deploy'] / max(cpu[other], 1e-9):.2f}x the server CPU")
    print(flush=True)


def report(store: str, results: dict) -> None:
    rows = []
    server = store == "http"
    for way, (times, _, trials, cpu, server_cpu) in results.items():
        lo, med = _common.summary(times)
        rows.append([way, trials, med, lo, float(np.mean(times)), cpu] + ([server_cpu] if server else []))
    print(f"-- {store} --")
    heads = ["way", "trials", "median ms/trial", "min ms/trial", "mean ms/trial", "client CPU ms/trial"]
    print(_common.table(heads + (["server CPU ms/trial"] if server else []), rows))
    med = {way: _common.summary(r[0])[1] for way, r in results.items()}
    goal = GOALS_MS[store]
    one, backlog = list(med)[:2]
    for way in (one, backlog):
        print(f"sweeper, {way}: {med[way]:.1f} ms/trial (goal <= {goal:g}: {_common.verdict(med[way], goal)})")
    ref = "one log_batch per trial (MLflow client)"
    print(f"  {ref} / sweeper one at a time = {med[ref] / med[one]:.1f}x; "
          f"per-value / sweeper one at a time = {med['per-value'] / med[one]:.1f}x")
    for way, (_, calls, trials, _, _) in results.items():
        if calls:
            print(f"  {way} calls per trial: " + ", ".join(
                f"{label} {n / trials:.2g}x {ms:.1f} ms" for label, n, _, ms in calls))
    print(flush=True)


def main() -> None:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20, help="trials per way (and backlog size)")
    ap.add_argument("--naive-trials", type=int, default=3, help="per-value runs per store")
    ap.add_argument("--stores", default="sqlite,http", help="comma-separated: sqlite, http")
    ap.add_argument("--server-workers", type=int, default=1, help="gunicorn workers of the tracking server")
    ap.add_argument("--skip-plain-server", action="store_true",
                    help="skip the comparison with MLflow's own store and a plain `mlflow server` (uvicorn)")
    ap.add_argument("--sweep-trials", type=int, default=16, help="trials of the in-a-sweep run (0: skip)")
    args = ap.parse_args()
    importlib.import_module("mlflow")  # it sets its loggers' level on import: quiet them after
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.simplefilter("ignore")

    _common.print_header("tracking_cost: one trial of 100 epochs x 5 metrics")
    spec, result = trial_result()
    n_values = EPOCHS * len(METRICS)
    print(
        f"record: {len(result.trial.params())} params, {n_values} history values + finals, "
        f"weights.npz of {sum(p.nbytes for p in result.outcome.params.values())} bytes\n"
    )
    stores = args.stores.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "sqlite" in stores:
            uri = f"sqlite:///{tmp / 'mlflow.db'}"
            report("sqlite", measure(uri, spec, result, args.trials, args.naive_trials))
        if "http" in stores:
            (tmp / "server").mkdir()
            folders = {kind: tmp / f"server{i}" for i, kind in enumerate(SERVERS)}
            for folder in folders.values():
                folder.mkdir()
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            with contextlib.ExitStack() as stack:
                url, pgid = stack.enter_context(mlflow_server(folders["deploy"], args.server_workers))
                report("http", measure(url, spec, result, args.trials, args.naive_trials, pgid))
                if not args.skip_plain_server:
                    others = {kind: stack.enter_context(mlflow_server(folders[kind], 1, kind=kind))
                              for kind in SERVERS if kind != "deploy"}
                    compare_servers({"deploy": (url, pgid), **others}, spec, result, args.trials)
                if args.sweep_trials:
                    in_sweep({"sqlite": "", "http": url}, args.sweep_trials, tmp)
        elif args.sweep_trials and "sqlite" in stores:
            in_sweep({"sqlite": ""}, args.sweep_trials, tmp)
    _common.maybe_rerun_unset(args)


if __name__ == "__main__":
    main()
