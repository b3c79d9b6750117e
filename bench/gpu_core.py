"""The CuPy core on a GPU against PyTorch on CUDA, and trials packed onto one GPU.

The same problems and settings as ``train_core.py`` (digits with hidden [128, 64] and the
synthetic 20,000 x 100 problem with hidden [256, 128]; ReLU, Adam at lr 0.001, batch 64,
float32, a fresh shuffle every epoch), trained by

  ours (cupy)        ``core.train.train`` with ``xp=cupy``: the whole call, as a sweeper
                     trial on a GPU worker runs it (the data's copy to the device, the
                     per-epoch dev pass and history, the final evaluation);
  torch-default      ``torch.optim.Adam`` (foreach) on CUDA, the plain loop of
                     ``train_core.py`` (the data's copy to the device included);
  torch-fused        the same with ``Adam(fused=True)``;
  ours (numpy, CPU)  the NumPy core on one CPU thread, for scale.

Times are wall seconds (on a GPU the CPU time of the launching thread says little); the
CUDA clocks stop after a synchronize. Contestants run in interleaved rounds, each keeping
its fastest. With small networks and batches of 64 both frameworks are bound by kernel
launches, not by the GPU's arithmetic.

``--pack 1,2,4,8`` also trains the same 8 synthetic trials in a process pool of k
processes sharing the one GPU (no Ray, no MLflow): what packing trials with fractional GPUs
(``resources.gpus_per_trial: 1/k``) can gain on this card. Throughput against k = 1 is
printed; sweeper's own packing goes through Ray, which the lent GPU machine lacks.

Needs CuPy with a CUDA device and a CUDA build of PyTorch; without them it says what is
missing and exits with status 2. ``--device cpu`` runs the same code with NumPy and
PyTorch on the CPU: a check of the script itself, not a GPU figure.

Run: ``python bench/gpu_core.py`` (about 1-2 min on an H100); ``--rounds``, ``--pack``.
"""

from __future__ import annotations

import functools
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import train_core  # noqa: E402

_common.ensure_project_on_path()

PACK_TRIALS = 8


def gpu_modules(device: str):
    """``(xp, torch device, lines to print)``, or exits 2 naming what is missing."""
    problems = []
    try:
        import torch
    except ImportError:
        torch = None
        problems.append("PyTorch is not installed")
    xp = np
    if device != "cpu":
        from core.backend import get_array_module

        try:
            xp = get_array_module("gpu")
        except RuntimeError as exc:
            problems.append(str(exc))
        if torch is not None and not torch.cuda.is_available():
            problems.append(f"torch {torch.__version__} sees no CUDA device")
    if problems:
        needs = "a GPU" if device != "cpu" else "PyTorch"
        print(f"gpu_core needs {needs}: " + "; ".join(problems) + " (--device cpu checks the script)")
        raise SystemExit(2)
    if device == "cpu":
        return np, "cpu", ["--device cpu: NumPy and PyTorch on the CPU (a check of this script)"]
    props = xp.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return xp, "cuda", [
        f"GPU: {name}, {props['totalGlobalMem'] / 2**30:.0f} GiB, {props['multiProcessorCount']} SMs; "
        f"CuPy {xp.__version__} (CUDA runtime {xp.cuda.runtime.runtimeGetVersion()}), "
        f"torch {torch.__version__} (CUDA {torch.version.cuda})"
    ]


def sync(xp) -> None:
    if xp is not np:
        xp.cuda.Device().synchronize()


def run_ours_on(p, xp, seed: int):
    """``train_core.run_ours`` with ``xp``; the clock stops after the device is idle (the
    result's arrays are already on the host, so that wait is empty)."""
    from core.config import TrainConfig
    from core.train import train

    with _common.Stopwatch() as sw:
        _, dev_error = train_core.run_ours(p, functools.partial(train, xp=xp), TrainConfig, seed)
        sync(xp)
    return sw.times, dev_error


def compare(p, xp, torch_device: str, mode: str, rounds: int, seed: int) -> None:
    errors: dict[str, float] = {}

    def timed(name, fn):
        def run():
            times, errors[name] = fn()
            return times

        return run

    runners = {
        f"ours ({xp.__name__})": timed(f"ours ({xp.__name__})", lambda: run_ours_on(p, xp, seed)),
        "torch-default": timed("torch-default", lambda: train_core.run_torch(p, "default", seed, torch_device)),
        f"torch-{mode}": timed(f"torch-{mode}", lambda: train_core.run_torch(p, mode, seed, torch_device)),
    }
    if xp is not np:
        runners["ours (numpy, CPU)"] = timed("ours (numpy, CPU)", lambda: run_ours_on(p, np, seed))
    for run in runners.values():  # warm-up: imports, kernel compilation, memory pools
        run()
    times = _common.interleaved(runners, rounds)
    best = {k: min(w for w, _ in v) for k, v in times.items()}
    ours = f"ours ({xp.__name__})"
    rows = [
        [k, best[k], _common.summary([w for w, _ in v])[1], best[k] / p.epochs * 1e3, errors[k], best[ours] / best[k]]
        for k, v in times.items()
    ]
    print(
        f"-- {p.name}: {p.X.shape[0]} x {p.X.shape[1]} train, hidden {list(p.hidden)}, {p.epochs} epochs, "
        f"batch {train_core.BATCH}, {rounds} rounds, on {torch_device} --"
    )
    print(_common.table(["contestant", "wall s min", "wall s median", "ms/epoch", "dev error", "ours / this"], rows))
    print(
        f"{ours} / torch-{mode} = {best[ours] / best[f'torch-{mode}']:.3f}; "
        f"{ours} / torch-default = {best[ours] / best['torch-default']:.3f}"
        + (f"; GPU over one CPU thread: {best['ours (numpy, CPU)'] / best[ours]:.2f}x" if xp is not np else "")
        + "\n",
        flush=True,
    )


def _pack_trial(args) -> float:
    """One trial in a pool process; returns its wall seconds."""
    device, seed, epochs = args
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        xp, _, _ = gpu_modules(device)
        p = train_core.load_problem("synthetic", epochs)
        (wall, _), _ = run_ours_on(p, xp, seed)
    return wall


def pack(device: str, ks: list[int], epochs: int) -> None:
    """The same trials in pools of k processes sharing the device; throughput vs k = 1."""
    ctx = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked children
    rows, base = [], None
    for k in ks:
        with ctx.Pool(k) as pool:
            pool.map(_pack_trial, [(device, 0, 1)] * k, chunksize=1)  # warm: imports, contexts
            t0 = time.perf_counter()
            walls = pool.map(_pack_trial, [(device, s, epochs) for s in range(PACK_TRIALS)], chunksize=1)
            total = time.perf_counter() - t0
        throughput = PACK_TRIALS / total
        base = base or throughput
        rows.append([k, f"1/{k}", total, float(np.median(walls)), throughput, throughput / base])
    print(f"-- packing: {PACK_TRIALS} synthetic trials of {epochs} epochs, k processes on one {device} --")
    print(_common.table(["k", "gpus_per_trial", "wall s", "median trial s", "trials/s", "vs k=1"], rows))
    print(flush=True)


def main() -> None:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument("--problems", default="digits,synthetic", help="comma-separated: digits, synthetic")
    ap.add_argument("--epochs-digits", type=int, default=30)
    ap.add_argument("--epochs-synthetic", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="timed runs of each contestant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pack", default="", help="comma-separated pool sizes k, e.g. 1,2,4,8 ('' skips)")
    ap.add_argument("--device", choices=("gpu", "cpu"), default="gpu",
                    help="cpu runs the same code on NumPy and PyTorch's CPU build: a check of the script")
    args = ap.parse_args()
    xp, torch_device, lines = gpu_modules(args.device)
    _common.print_header("gpu_core: the CuPy core vs PyTorch on CUDA")
    import torch

    torch.set_num_threads(1)
    mode = train_core.fused_mode(torch, torch_device)
    print("\n".join(lines) + f"\nAdam(fused=True) on {torch_device}: "
          + ("supported" if mode == "fused" else "unsupported, using foreach") + "\n", flush=True)
    from threadpoolctl import threadpool_limits

    epochs = {"digits": args.epochs_digits, "synthetic": args.epochs_synthetic}
    with threadpool_limits(limits=1):
        for name in args.problems.split(","):
            p = train_core.load_problem(name.strip(), epochs[name.strip()])
            compare(p, xp, torch_device, mode, args.rounds, args.seed)
    if args.pack:
        pack(args.device, [int(k) for k in args.pack.split(",")], args.epochs_synthetic)
    _common.maybe_rerun_unset(args)


if __name__ == "__main__":
    main()
