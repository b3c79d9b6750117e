"""What every benchmark prints about where it ran, and how it times contestants fairly.

Not a benchmark itself. The machine line names the CPU, the cores this process may use,
the load average (the machine may be shared), NumPy's BLAS and the kernel it runs, and
whether ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` are set: on some processors they are
set to keep older OpenBLAS builds correct, and they slow a current NumPy. Benchmarks never
change them; ``--unset-coretype`` re-runs the benchmark in a subprocess with both unset
together and prints that run too, so the two are side by side.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CORETYPE_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_CHILD_MARK = "SWEEPER_BENCH_CHILD"
ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> str:
    """NumPy's BLAS: library, version, the kernel (architecture) it runs, and its threads."""
    importlib.import_module("numpy")  # loads its BLAS, so threadpoolctl can see it
    from threadpoolctl import threadpool_info

    parts = []
    for pool in threadpool_info():
        if pool.get("user_api") != "blas":
            continue
        parts.append(
            f"{pool.get('internal_api')} {pool.get('version')} kernel={pool.get('architecture')} "
            f"threads={pool.get('num_threads')} ({Path(pool.get('filepath', '')).name})"
        )
    return "; ".join(parts) or "none found by threadpoolctl"


def machine_lines() -> list[str]:
    """Human-readable lines describing this machine and process."""
    import numpy

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    coretype = ", ".join(
        f"{k}={os.environ[k]!r}" if k in os.environ else f"{k} unset" for k in CORETYPE_VARS
    )
    return [
        f"machine: {cpu_model()}; {os.cpu_count()} logical cores, {usable} usable; "
        f"load average {load}",
        f"python {platform.python_version()}, numpy {numpy.__version__}; BLAS: {blas_info()}",
        f"env: {coretype}",
    ]


def print_header(title: str) -> None:
    print(f"== {title} ==")
    for line in machine_lines():
        print(line)
    print(flush=True)


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every benchmark shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--unset-coretype",
        action="store_true",
        help="also re-run this benchmark in a subprocess with OPENBLAS_CORETYPE and "
        "OPENBLAS_L2_SIZE unset together, and print both runs",
    )
    return p


def maybe_rerun_unset(args: argparse.Namespace) -> None:
    """After a run: with --unset-coretype, runs the same command with both variables unset."""
    if not args.unset_coretype or os.environ.get(_CHILD_MARK):
        return
    print(
        "\n== the same benchmark with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset ==", flush=True
    )
    if not any(k in os.environ for k in CORETYPE_VARS):
        print(
            "(neither was set here, so this run has the same BLAS setup as the one above)",
            flush=True,
        )
    env = {k: v for k, v in os.environ.items() if k not in CORETYPE_VARS}
    env[_CHILD_MARK] = "1"
    argv = [a for a in sys.argv[1:] if a != "--unset-coretype"]
    subprocess.run([sys.executable, sys.argv[0], *argv], env=env, check=False)


def interleaved(contestants: dict[str, Callable[[], T]], rounds: int) -> dict[str, list[T]]:
    """Runs every contestant once per round, rotating the order; returns what each returned.

    A contestant returns the timings it measured itself (its own work alone). Rotating the
    order spreads a noisy neighbour's bursts over all of them; compare minima.
    """
    names = list(contestants)
    times: dict[str, list[T]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(contestants[name]())
    return times


def summary(seconds: Sequence[float]) -> tuple[float, float]:
    """(min, median) of repeated timings."""
    return min(seconds), statistics.median(seconds)


def verdict(value: float, goal: float) -> str:
    """``meets`` when ``value <= goal``, else ``MISSES``."""
    return "meets" if value <= goal else "MISSES"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width table."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


class Stopwatch:
    """``with Stopwatch() as sw: ...``; then ``sw.wall`` and ``sw.cpu`` (this process's CPU
    seconds, all its threads), and ``sw.times == (wall, cpu)``.

    On a shared machine the wall time of a one-thread run also counts the time it waited
    for a core; its CPU time does not, so single-thread comparisons use CPU time.
    """

    def __enter__(self) -> "Stopwatch":
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.wall = self.cpu = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.c0

    @property
    def times(self) -> tuple[float, float]:
        return self.wall, self.cpu


def ensure_project_on_path() -> None:
    """Lets ``python bench/NAME.py`` import core/ and sweeper/ from a checkout too."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def warm_workers(p: int) -> None:
    """Starts ``p`` workers and imports the training code in each, before the clock."""
    import ray

    @ray.remote(num_cpus=1)
    def warm() -> int:
        importlib.import_module("sweeper.results")
        importlib.import_module("core.train")
        time.sleep(0.5)  # hold the CPU so the next task lands on another worker
        return os.getpid()

    ray.get([warm.remote() for _ in range(p)])


CPU_ROLES = ("trials", "driver", "Ray daemons", "other processes", "steal", "idle")


def cpu_snapshot() -> dict[str, float]:
    """CPU seconds used so far, by role, on the whole machine (Linux figures via psutil).

    ``trials``: Ray's task workers (``ray::...`` but its agents) and this process's
    ``multiprocessing`` children; ``driver``: this process; ``Ray daemons``: every other
    process with ``ray`` in its command line (GCS, raylets, agents, log monitor);
    ``other processes``: the machine's busy time less those, that is, neighbours' work;
    ``steal``: time the hypervisor ran something else on our virtual CPUs; ``idle``.
    The difference of two snapshots says where a phase's CPU capacity went.
    """
    import psutil

    me = os.getpid()
    out = dict.fromkeys(CPU_ROLES, 0.0)
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        used = times.user + times.system
        line = " ".join(proc.info["cmdline"] or [])
        if proc.info["pid"] == me:
            out["driver"] += used
        elif line.startswith("ray::") and "Agent" not in line:
            out["trials"] += used
        elif proc.info["ppid"] == me and "multiprocessing" in line:
            out["trials"] += used
        elif "ray" in line.lower():
            out["Ray daemons"] += used
    machine = psutil.cpu_times()
    busy = sum(getattr(machine, k, 0.0) for k in ("user", "nice", "system", "irq", "softirq"))
    out["other processes"] = busy - out["trials"] - out["driver"] - out["Ray daemons"]
    out["steal"] = getattr(machine, "steal", 0.0)
    out["idle"] = machine.idle + getattr(machine, "iowait", 0.0)
    return out


def cpu_split(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Each role's share of the machine's CPU capacity between two :func:`cpu_snapshot`."""
    used = {k: after[k] - before[k] for k in CPU_ROLES}
    total = sum(used.values()) or 1.0
    return {k: v / total for k, v in used.items()}
