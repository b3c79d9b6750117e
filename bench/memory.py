"""Memory of trials on a big dataset: put once into Ray's object store, read without copies.

A 1,000,000 x 100 float32 dataset (400 MB; 980,000 train / 10,000 dev rows, 2 classes)
goes through sweeper's own runner (``sweeper.runner.execute`` on a local Ray with 2 CPUs,
one trial per task): the driver puts the prepared data into the object store once, and
every task gets a reference to it. Each trial trains a [16] network for one epoch
(batch 256) with the core.

Inside every worker, around sweeper's ``run_chunk``, the benchmark checks that the trial's
``X_train`` is read-only, lies in the object store's shared memory (its address falls in a
``/dev/shm`` or plasma mapping of the process) and, for two trials in the same worker, is
the very same memory (``np.shares_memory``); and samples the worker's memory every 20 ms:
RSS (all resident pages, shared object-store pages included once they are read), private
anonymous memory (``RssAnon``: what copies would grow) and shared memory (``RssShmem``).
A copy of the training set per trial would add 392 MB of private memory.

Run: ``python bench/memory.py`` (about 30 s); ``--rows`` for another size; ``--ref f738b5b``
then runs the same with the workers on the core before the no-copy minibatches.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

_common.ensure_project_on_path()

MB = 1 << 20
COPY_LIMIT = 0.10  # private growth per worker above this fraction of the train set = a copy


def make_data(rows: int, cols: int):
    """Prepared float32 splits (98 / 1 / 1), labels from a random linear rule."""
    from core.splits import Normalizer, PreparedData

    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, cols), dtype=np.float32)
    y = (X @ rng.standard_normal(cols).astype(np.float32) > 0).astype(np.int64)
    n_dev = n_test = rows // 100
    n_train = rows - n_dev - n_test
    parts = [
        X[:n_train],
        y[:n_train],
        X[n_train:-n_test],
        y[n_train:-n_test],
        X[-n_test:],
        y[-n_test:],
    ]
    for a in parts:
        a.flags.writeable = False
    return PreparedData(
        *parts,
        Normalizer(np.zeros(cols), np.ones(cols)),
        np.array([0, 1]),
        tuple(f"x{i}" for i in range(cols)),
        "memory",
        "f" * 64,
    )


def trials(n: int):
    from core.config import TrainConfig
    from sweeper.spec import TrialSpec

    out = []
    for i in range(n):
        config = TrainConfig(
            architecture=(16,),
            epochs=1,
            batch_size=256,
            learning_rate=0.01,
            lambd=0.01 * i,
            normalize=True,
            dtype="float32",
        )
        out.append(TrialSpec(config, 0, 1234, f"memory-{i}", (("lambda", 0.01 * i),)))
    return out


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _in_shared_mapping(address: int) -> str:
    """The mapping of this process that holds ``address`` if it is shared memory, else ''."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if lo <= address < hi:
            path = parts[5] if len(parts) > 5 else "[anonymous]"
            shared = "s" in parts[1] or "/dev/shm" in path or "plasma" in path
            return path if shared else ""
    return ""


_SEEN: dict[str, np.ndarray] = {}  # per worker process: the first trial's X_train


def measured_chunk(trials, data, device, threads):
    """sweeper's ``run_chunk`` with memory samples and backing checks around it."""
    from sweeper import results

    peak = {"rss": 0, "anon": 0, "shmem": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for key, field in (("rss", "VmRSS"), ("anon", "RssAnon"), ("shmem", "RssShmem")):
                peak[key] = max(peak[key], _status_kb(field))
            time.sleep(0.02)

    before = {"anon": _status_kb("RssAnon"), "rss": _status_kb("VmRSS")}
    X = data.X_train
    first = _SEEN.setdefault("X", X)
    checks = {
        "read_only": not X.flags.writeable,
        "mapping": _in_shared_mapping(X.ctypes.data),
        "same_as_first_trial_here": (
            "first here" if first is X else str(bool(np.shares_memory(X, first)))
        ),
    }
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out = results.run_chunk(trials, data, device, threads)
    finally:
        done.set()
        sampler.join()
    stats = {
        "pid": os.getpid(),
        "before": before,
        "peak": peak,
        "checks": checks,
        "hwm": _status_kb("VmHWM"),
        "core": sys.modules["core"].__file__,
    }
    return [
        dataclasses.replace(r, extra_tags={**r.extra_tags, "bench.memory": repr(stats)})
        for r in out
    ]


def main() -> None:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cols", type=int, default=100)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument(
        "--ref",
        help="then the same with the workers on core/ at this git revision "
        "(e.g. f738b5b, before the no-copy minibatches)",
    )
    args = ap.parse_args()
    import ray

    import sweeper.runner as runner

    _common.print_header("memory: one dataset in the object store, read by every trial")
    data = make_data(args.rows, args.cols)
    train_mb = data.X_train.nbytes / MB
    total_mb = sum(a.nbytes for a in (data.X_train, data.X_dev, data.X_test)) / MB
    print(
        f"dataset {args.rows} x {args.cols} float32 = {total_mb:.0f} MB "
        f"(train {train_mb:.0f} MB); {args.trials} trials, one per task, 2 CPUs"
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    results: list = []
    original = runner.run_chunk
    runner.run_chunk = measured_chunk  # the runner builds its Ray task from this name
    try:
        t0 = time.perf_counter()
        runner.execute(
            trials(args.trials),
            {(True, "float32"): data},
            runner.RunOptions(num_cpus=2, chunk_size=1),
            results.append,
        )
        wall = time.perf_counter() - t0
    finally:
        runner.run_chunk = original
        ray.shutdown()
    report(results, train_mb, wall)
    if args.ref:
        rerun_on_ref(args)
    _common.maybe_rerun_unset(args)


def rerun_on_ref(args) -> None:
    """Runs this benchmark again from a folder holding core/ at ``args.ref``: Ray's workers
    put the driver's working folder first on their path, so they train with that core."""
    import subprocess
    import tempfile

    print(f"\n== the same, the workers running core/ as at {args.ref} ==", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(_common.ROOT), "archive", args.ref, "core"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        argv = ["--rows", str(args.rows), "--cols", str(args.cols), "--trials", str(args.trials)]
        subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv], cwd=tmp, check=False)


def report(results, train_mb: float, wall: float) -> None:
    import ast

    by_pid: dict[int, list] = {}
    rows = []
    for r in results:
        assert r.status == "finished", (r.status, r.reason)
        s = ast.literal_eval(r.extra_tags["bench.memory"])
        by_pid.setdefault(s["pid"], []).append(s)
        growth = (s["peak"]["anon"] - s["before"]["anon"]) / 1024
        rows.append(
            [
                r.trial.digest,
                s["pid"],
                f"{r.seconds:.2f}",
                s["peak"]["rss"] / 1024,
                s["before"]["anon"] / 1024,
                s["peak"]["anon"] / 1024,
                growth,
                s["peak"]["shmem"] / 1024,
                s["checks"]["read_only"],
                s["checks"]["mapping"] or "NOT shared",
                s["checks"]["same_as_first_trial_here"],
            ]
        )
    cores = {ast.literal_eval(r.extra_tags["bench.memory"])["core"] for r in results}
    print(f"\nall trials done in {wall:.1f} s; the workers' core: {', '.join(sorted(cores))}\n")
    print(
        _common.table(
            [
                "trial",
                "worker pid",
                "train s",
                "peak RSS MB",
                "private MB before",
                "peak private MB",
                "private growth MB",
                "peak shared MB",
                "read-only",
                "X_train mapping",
                "same memory as earlier trial",
            ],
            rows,
        )
    )
    print()
    worst = 0.0
    for pid, stats in by_pid.items():
        hwm = max(s["hwm"] for s in stats) / 1024
        anon = max(s["peak"]["anon"] for s in stats) / 1024
        growth = max((s["peak"]["anon"] - s["before"]["anon"]) / 1024 for s in stats)
        worst = max(worst, growth)
        print(
            f"worker {pid}: {len(stats)} trial(s); peak RSS (VmHWM) {hwm:.0f} MB "
            f"= {hwm / train_mb:.2f} x the train set (shared object-store pages included); "
            f"peak private {anon:.0f} MB, of which the trials added at most {growth:.0f} MB "
            f"= {growth / train_mb:.3f} x the train set"
        )
    ok = worst <= COPY_LIMIT * train_mb and all(r[8] and r[9] != "NOT shared" for r in rows)
    print(
        f"\nno copy per trial (read-only, in shared memory, private growth <= "
        f"{COPY_LIMIT:.0%} of the train set): {'yes' if ok else 'NO'}"
    )


if __name__ == "__main__":
    main()
