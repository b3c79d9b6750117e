"""Load: a 1,000-trial grid of small networks on the local cores, every trial in MLflow once.

Prints the wall time, the time per trial, the driver's peak memory and how it grew over
the sweep, and checks the store: one complete run per trial digest, none missing.

    python bench/load.py                 # 1,000 trials on a local Ray
    python bench/load.py --trials 200    # a smaller grid
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

_common.ensure_project_on_path()

AXES = {
    "lambda": [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
    "keep_prob": [1.0, 0.95, 0.9, 0.85, 0.8],
    "initializer": ["he", "xavier", "glorot", "random", "zeros"],
    "architecture": [[4], [8], [4, 4], [8, 4]],
}


def grid_text(trials: int) -> str:
    axes, n = {}, 1
    for key, values in AXES.items():  # shrink the last axes first to reach the count
        axes[key] = values
        n *= len(values)
    while n > trials:
        key = next(k for k in reversed(list(axes)) if len(axes[k]) > 1)
        n //= len(axes[key])
        axes[key] = axes[key][:-1]
        n *= len(axes[key])
    lines = "\n".join(f"  {k}: {v}" for k, v in axes.items())
    return (
        "name: load\nseed: 1\ndataset: {name: moons, n_samples: 200, noise: 0.2}\ngrid:\n"
        + lines
        + "\nfixed:\n  epochs: 2\nensemble: {method: none}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()

    from mlflow import MlflowClient

    from sweeper.runner import RunOptions
    from sweeper.spec import parse_spec
    from sweeper.sweep import plan, submit

    folder = Path(tempfile.mkdtemp(prefix="sweeper-load-"))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    spec = parse_spec(grid_text(args.trials), "load.yaml", folder, path=folder / "load.yaml")
    the_plan = plan(spec)
    me = psutil.Process()
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.time(), me.memory_info().rss))
            time.sleep(0.5)

    threading.Thread(target=sample, daemon=True).start()
    start_rss = me.memory_info().rss
    t0 = time.time()
    outcome = submit(
        the_plan,
        RunOptions(),
        uri,
        echo=lambda s: None,
        progress_enabled=False,
        journal_dir=folder / "journal",
    )
    wall = time.time() - t0
    done.set()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("load")
    runs, token = [], None
    while True:
        page = client.search_runs(
            [exp.experiment_id], "tags.`sweeper.kind` = 'trial'", max_results=1000, page_token=token
        )
        runs += page
        token = page.token
        if not token:
            break
    digests = [r.data.tags["sweeper.digest"] for r in runs]
    n = len(the_plan.trials)
    half = [rss for t, rss in samples if t - t0 < wall / 2]
    print(
        f"trials: {n}, finished: {outcome.counts.get('finished', 0)}, runs in MLflow: {len(runs)}, "
        f"distinct digests: {len(set(digests))}, missing: {n - len(set(digests))}, duplicates: {len(digests) - len(set(digests))}"
    )
    print(
        f"wall: {wall:.1f} s ({wall / n * 1000:.0f} ms per trial), training {outcome.train_seconds:.1f} s, "
        f"overhead {outcome.overhead_per_trial * 1000:.0f} ms per trial"
    )
    print(
        f"driver RSS: start {start_rss / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB, "
        f"peak in first half {max(half) / 2**20 if half else float('nan'):.0f} MiB, "
        f"growth {(peak - start_rss) / n / 1024:.1f} KiB per trial"
    )
    ok = len(runs) == len(set(digests)) == n
    print("OK" if ok else "FAILED: the store does not hold every trial exactly once")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
