"""Parallel efficiency of sweeper: one CPU vs every local core vs a multi-node Ray cluster.

The same 16 trials (lambda x initializer, 4 x 4: a [256, 128] ReLU network, Adam, 100
epochs, batch 64 on digits) are submitted with ``sweeper.sweep.submit``, each time to a
fresh sqlite MLflow store, on

  1 CPU     a local Ray started with ``num_cpus=1``: trials one after another (T1);
  local     a local Ray with every core of this machine (p = cores), Tp;
  cluster   a ``ray.cluster_utils.Cluster``: a head with no CPUs (the driver's node) and
            two worker nodes of 1 CPU each (p = 2), in processes on this machine: the
            layout of deploy/kuberay, whose head only coordinates;
  cluster2  a head with 1 CPU and one worker node with 1 CPU (p = 2): the layout
            deploy/head.sh and deploy/worker.sh give two one-core machines by default.
            Each node runs its own raylet and agents, so on this machine the first layout
            puts three nodes' daemons on the two cores the trials use, this one two.

  reference a plain ``multiprocessing`` pool of 1 and of p processes running the same
            trials (no Ray, no MLflow): what the hardware itself gives p trials at
            once, since trials side by side share caches, memory bandwidth and,
            under a hypervisor, whatever the cores are on the host.

Efficiency = T1 / (p * Tp). Ray is started, and its workers warmed, before each clock.
Two figures: the whole submission (including opening the store, the ensembles and the
report, which run once whatever p is), and the trial phase alone (``execute``, the first
task to the last result). On a machine shared with other work, the cores are not all ours:
the load average is printed beside the results.

All runs alternate for ``--rounds`` rounds (3) and each keeps its fastest: on this
shared machine the same 16 trials on 1 CPU have taken anywhere from 13.5 to 19.5 s in
one run. The efficiency within each round (against that round's own 1-CPU run) is
printed too, as a median and range over the rounds.

Run: ``python bench/scaling.py`` (about 7 min); ``--epochs`` makes each trial longer.
"""

from __future__ import annotations

import importlib
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _probe import Probe  # noqa: E402

_common.ensure_project_on_path()

GOAL = 0.9
RAY_INIT = dict(include_dashboard=False, log_to_driver=False, logging_level="WARNING")


def grid(epochs: int) -> str:
    return f"""\
name: scaling
seed: 3
dataset: {{name: digits}}
grid:
  lambda: [0, 0.01, 0.1, 1.0]
  initializer: [he, xavier, glorot, random]
fixed:
  architecture: [256, 128]
  optimizer: adam
  learning_rate: 0.001
  epochs: {epochs}
  batch_size: 64
resources: {{cpus_per_trial: 1}}
"""


def submit_once(the_plan, folder: Path) -> dict[str, float]:
    from sweeper.runner import RunOptions
    from sweeper.sweep import submit

    probes = {"execute": "sweeper.sweep:execute", "finish": "sweeper.sweep:_finish"}
    marks: dict[str, dict[str, float]] = {}

    def mark(when: str):  # CPU snapshots around the trial phase, outside the probe's clock
        def take(label, *_):
            if label == "execute":
                marks[when] = _common.cpu_snapshot()

        return take

    with Probe(probes, on_call=mark("after"), on_enter=mark("before")) as probe, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        outcome = submit(
            the_plan,
            RunOptions(),
            f"sqlite:///{folder / 'mlflow.db'}",
            echo=lambda _: None,
            progress_enabled=False,
            journal_dir=folder / "journal",
        )
        wall = time.perf_counter() - t0
    n = len(the_plan.trials)
    assert outcome.counts.get("finished", 0) == n, outcome.counts
    return {
        "wall": wall,
        "phase": probe.stats["execute"][1],
        "train": outcome.train_seconds,
        "finish": probe.stats["finish"][1],
        **_common.cpu_split(marks["before"], marks["after"]),
    }


def on_local_ray(the_plan, folder: Path, cpus: int) -> dict[str, float]:
    import ray

    ray.init(num_cpus=cpus, **RAY_INIT)
    try:
        _common.warm_workers(cpus)
        return submit_once(the_plan, folder)
    finally:
        ray.shutdown()


def _pool_trial(args) -> float:
    """One trial in a pool worker, one BLAS thread; returns its own training seconds."""
    from sweeper.results import run_chunk

    trial, data = args
    (result,) = run_chunk([trial], data, "cpu", 1)
    assert result.status == "finished", result.reason
    return result.seconds


def on_process_pool(the_plan, cpus: int) -> dict[str, float]:
    """The same trials in a plain ``multiprocessing`` pool of ``cpus`` processes: no Ray,
    no MLflow, no ensembles. What this machine gives ``cpus`` trials at once; sweeper's
    trial phase cannot beat it. Workers are started and warmed before the clock."""
    import multiprocessing

    data = the_plan.data[(True, "float32")].without_test()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(cpus) as pool:
        pool.map(_pool_trial, [(the_plan.trials[0], data)] * cpus, chunksize=1)  # warm: imports
        before = _common.cpu_snapshot()
        t0 = time.perf_counter()
        seconds = pool.map(_pool_trial, [(t, data) for t in the_plan.trials], chunksize=1)
        wall = time.perf_counter() - t0
        split = _common.cpu_split(before, _common.cpu_snapshot())
    return {"wall": wall, "phase": wall, "train": float(sum(seconds)), "finish": 0.0, **split}


def on_cluster(the_plan, folder: Path, cpus: int = 2, head_cpus: int = 0) -> dict[str, float]:
    """A head with ``head_cpus`` CPUs and 1-CPU nodes for the rest of ``cpus``, in processes
    on this machine."""
    import ray
    from ray.cluster_utils import Cluster

    # No dashboard on the head: its processes would share these cores with the trials.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": head_cpus, "include_dashboard": False})
    try:
        for _ in range(cpus - head_cpus):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, **RAY_INIT)
        _common.warm_workers(cpus)
        return submit_once(the_plan, folder)
    finally:
        ray.shutdown()
        cluster.shutdown()


def on_cluster_head_cpu(the_plan, folder: Path, cpus: int = 2) -> dict[str, float]:
    """A head with 1 CPU and 1-CPU nodes for the rest of ``cpus``."""
    return on_cluster(the_plan, folder, cpus, head_cpus=1)


def paired(every: dict[str, list[dict[str, float]]], cores: int) -> None:
    """Efficiency within each round (against that round's own 1-CPU or 1-process run,
    a minute apart): the median and range over rounds. The fastest-of-rounds figures above
    may pair runs from different minutes of a machine whose speed moves."""

    one, pool_one = every.get("1 CPU (local Ray)"), every.get("reference: plain pool, 1 process")
    print("\nper round (each against the same round's 1-CPU run): median [min-max]")
    for label, got in every.items():
        base = pool_one if label.startswith("reference") else one
        if base is None or got is base or "1 process" in label:
            continue
        p = 2 if label.startswith("cluster") else cores
        for figure in ("wall", "phase"):
            e = [b[figure] / (p * g[figure]) for b, g in zip(base, got)]
            name = "submit" if figure == "wall" else "trial phase"
            print(f"  {label}, {name}: {statistics.median(e):.2f} [{min(e):.2f}-{max(e):.2f}]")


def main() -> None:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=100, help="epochs per trial")
    ap.add_argument("--skip-cluster", action="store_true")
    ap.add_argument("--skip-pool", action="store_true", help="skip the plain process-pool reference")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of the local runs; fastest kept")
    args = ap.parse_args()
    importlib.import_module("mlflow")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from sweeper.spec import parse_spec
    from sweeper.sweep import plan

    _common.print_header("scaling: 16 trials, 1 CPU vs all local cores vs 3-node and 2-node clusters")
    the_plan = plan(parse_spec(grid(args.epochs), "scaling.yaml"))
    n = len(the_plan.trials)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    runs: dict[str, tuple[int, dict[str, float]]] = {}
    every: dict[str, list[dict[str, float]]] = {}  # each round's run of each case
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cluster = "cluster: head (0 CPU) + 2 x 1-CPU nodes"
        cluster2 = "cluster: head (1 CPU) + 1 x 1-CPU node"
        cases = [("1 CPU (local Ray)", 1, "one"), (f"{cores} CPUs (local Ray)", cores, "all")]
        if not args.skip_pool:
            cases += [("reference: plain pool, 1 process", 1, None),
                      (f"reference: plain pool, {cores} processes", cores, None)]
        if not args.skip_cluster:
            cases += [(cluster, 2, "cluster"), (cluster2, 2, "cluster2")]
        # Rounds alternate the cases, and each keeps its fastest: a neighbour's burst of
        # load then slows one round of all of them, not every run of one.
        for r in range(args.rounds):
            for label, p, folder in cases:
                if folder is None:
                    got = on_process_pool(the_plan, p)
                else:
                    (tmp / f"{folder}{r}").mkdir()
                    run = {"cluster": on_cluster, "cluster2": on_cluster_head_cpu}.get(folder, on_local_ray)
                    got = run(the_plan, tmp / f"{folder}{r}", p)
                print(f"  {label}, round {r + 1}: {got['wall']:.2f} s", flush=True)
                every.setdefault(label, []).append(got)
                if label not in runs or got["wall"] < runs[label][1]["wall"]:
                    runs[label] = (p, got)

    t1 = runs["1 CPU (local Ray)"][1]
    rows = []
    for label, (p, r) in runs.items():
        base = runs["reference: plain pool, 1 process"][1] if label.startswith("reference") else t1
        e_all = base["wall"] / (p * r["wall"])
        e_phase = base["phase"] / (p * r["phase"])
        slot_use = r["train"] / (p * r["phase"])
        slowdown = r["train"] / base["train"]
        rows.append(
            [
                label,
                p,
                r["wall"],
                r["phase"],
                r["train"],
                r["finish"],
                e_all,
                e_phase,
                slot_use,
                slowdown,
            ]
        )
    headers = [
        "run",
        "p",
        "submit s",
        "trial phase s",
        "train s (sum)",
        "ensemble+report s",
        "eff. (submit)",
        "eff. (trial phase)",
        "slot use",
        "trial slowdown",
    ]
    print()
    print(_common.table(headers, rows))
    print(
        "slot use = train s / (p * trial phase s): how busy sweeper keeps its p slots;\n"
        "trial slowdown = train s / train s of the 1-CPU run: the same trials' own compute\n"
        "got slower with p running at once (shared cores, memory bandwidth, the driver's\n"
        "logging thread). Efficiency (trial phase) = slot use / trial slowdown."
    )
    print("\nwhere the machine's CPU went in the trial phase (share of all cores x phase), median of rounds")
    print(_common.table(["run", *_common.CPU_ROLES],
                        [[label, *(statistics.median(g[k] for g in every[label]) for k in _common.CPU_ROLES)]
                         for label in runs]))
    print("trials: the task workers or pool processes (their own overhead too); on this many\n"
          "cores, whatever the driver, Ray's daemons and neighbours use is taken from the trials\n"
          "when p fills the cores, but not in the 1-CPU run, whose other core is free.")
    print(f"\n{n} trials; efficiency = T1 / (p * Tp) against the 1-CPU run; goal >= {GOAL}")
    for label, (p, r) in list(runs.items())[1:]:
        if label.startswith("reference"):
            continue
        e_all = t1["wall"] / (p * r["wall"])
        e_phase = t1["phase"] / (p * r["phase"])
        print(
            f"  {label}: submit {e_all:.2f} ({_common.verdict(-e_all, -GOAL)}), "
            f"trial phase {e_phase:.2f} ({_common.verdict(-e_phase, -GOAL)})"
        )
    pool = runs.get(f"reference: plain pool, {cores} processes")
    if pool is not None:
        p1 = runs["reference: plain pool, 1 process"][1]
        hw = p1["wall"] / (cores * pool[1]["wall"])
        local = runs[f"{cores} CPUs (local Ray)"][1]
        print(
            f"  the hardware's own efficiency (plain pool, {cores} processes): {hw:.2f}; trials "
            f"{pool[1]['train'] / p1['train']:.2f}x slower side by side\n"
            f"  sweeper's trial phase on {cores} CPUs / plain pool's wall = "
            f"{local['phase'] / pool[1]['wall']:.2f} (1 = no overhead over what the hardware gives)"
        )
    paired(every, cores)
    print("load average after: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    _common.maybe_rerun_unset(args)


if __name__ == "__main__":
    main()
