"""Training speed of sweeper's NumPy core against PyTorch (CPU) and scikit-learn.

Every contestant trains the same fully-connected ReLU network with Adam (lr 0.001, betas
0.9 / 0.999, eps 1e-8), no weight decay, batch size 64 on a fresh shuffle every epoch,
float32, for the same number of epochs, on one thread (``threadpoolctl`` limits the BLAS,
``torch.set_num_threads(1)``). Problems: scikit-learn's digits (hidden [128, 64]) and a
synthetic 20,000 x 100, 10-class problem (hidden [256, 128]); 80/20 train/dev, standardized
with training statistics.

What each timing holds:
  ours           ``core.train.train``: whole call (data checks, init, training, final
                 evaluation). Per epoch it also records the history (cost, training error
                 from the minibatch passes, learning rate, ||dW|| of every layer per
                 minibatch), evaluates the dev set, and checks for divergence.
  ours: minibatch loops only
                 the same runs, only the time inside the epochs' minibatch loops (shuffle,
                 forward, loss, backward, Adam step, plus the per-minibatch cost, error
                 count and ||dW||): what torch's loop does, plus those few extras.
  torch-default  ``torch.optim.Adam`` (foreach), a plain loop: shuffle, forward, loss,
                 backward, step. Nothing else. Initialized like ours (He normal, zero biases).
  torch-fused    the same with ``Adam(fused=True)`` (``foreach=True`` where fused is
                 unsupported on CPU; the output says which).
  sklearn        ``MLPClassifier(solver="adam").fit`` (alpha=0, no early stopping; it also
                 sums the minibatch losses per epoch; Glorot-uniform initialization).

Contestants run in rounds, rotating their order, so a noisy neighbour hits all alike. The
ratios compare each one's fastest round in CPU seconds of the process (every contestant runs
one thread, so on an idle machine that is its wall time; on a shared one the wall time also
counts waiting for a core). Wall minima are printed beside them.

Run: ``python bench/train_core.py`` (about 1-2 min). ``--ref f738b5b`` also times the core
as it was at that git revision (before the speedups). ``--keep-prob 0.8`` trains ours and
torch's with dropout on every hidden layer (``torch.nn.Dropout`` after each ReLU;
scikit-learn has none and is skipped); the goals are stated for no dropout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

_common.ensure_project_on_path()

GOALS = {"digits": 0.5, "synthetic": 0.6}  # ours / torch-fused, at most
LOOP = "ours: minibatch loops only"
LR = 1e-3
BATCH = 64


@dataclass(frozen=True)
class Problem:
    name: str
    X: np.ndarray
    y: np.ndarray
    X_dev: np.ndarray
    y_dev: np.ndarray
    hidden: tuple[int, ...]
    epochs: int
    keep_prob: float = 1.0  # dropout on every hidden layer below 1 (--keep-prob)

    @property
    def n_classes(self) -> int:
        return int(max(self.y.max(), self.y_dev.max())) + 1


def load_problem(name: str, epochs: int) -> Problem:
    """digits (1,797 x 64) or synthetic (20,000 x 100, 10 classes), split 80/20."""
    from sklearn.datasets import load_digits, make_classification

    if name == "digits":
        X, y = load_digits(return_X_y=True)
        hidden = (128, 64)
    else:
        X, y = make_classification(
            20_000, 100, n_informative=50, n_redundant=10, n_classes=10, random_state=0
        )
        hidden = (256, 128)
    perm = np.random.default_rng(0).permutation(len(X))
    n_train = int(0.8 * len(X))
    tr, dv = perm[:n_train], perm[n_train:]
    mean, std = X[tr].mean(axis=0), X[tr].std(axis=0) + 1e-8
    Xs = ((X - mean) / std).astype(np.float32)
    return Problem(
        name, Xs[tr], y[tr].astype(np.int64), Xs[dv], y[dv].astype(np.int64), hidden, epochs
    )


def run_ours(p: Problem, train_fn, config_cls, seed: int, loop: list | None = None):
    """Times ``train``; with ``loop``, also appends the (wall, CPU) seconds spent inside its
    epochs' minibatch loops (``core._epoch.run_epoch``), the part like torch's loop."""
    config = config_cls(
        architecture=p.hidden,
        optimizer="adam",
        learning_rate=LR,
        epochs=p.epochs,
        batch_size=BATCH,
        initializer="he",
        dtype="float32",
        keep_prob=p.keep_prob,
    )
    rng = np.random.default_rng(seed)
    spent = [0.0, 0.0]
    with contextlib.ExitStack() as stack:
        if loop is not None:
            module = sys.modules["core.train"]
            original = module.run_epoch

            def timed_epoch(*args, **kwargs):
                with _common.Stopwatch() as sw:
                    result = original(*args, **kwargs)
                spent[0] += sw.wall
                spent[1] += sw.cpu
                return result

            stack.enter_context(mock.patch.object(module, "run_epoch", timed_epoch))
        with _common.Stopwatch() as sw:
            out = train_fn(config, p.X, p.y, p.X_dev, p.y_dev, p.n_classes, rng)
    assert out.epochs_run == p.epochs and out.status == "finished", out.reason
    if loop is not None:
        loop.append(tuple(spent))
    return sw.times, float(out.dev_error)


def fused_mode(torch, device: str = "cpu") -> str:
    """``fused`` if ``Adam(fused=True)`` steps on ``device`` here, else ``foreach``."""
    w = torch.nn.Parameter(torch.zeros(3, device=device))
    try:
        opt = torch.optim.Adam([w], fused=True)
        w.grad = torch.ones(3, device=device)
        opt.step()
        return "fused"
    except (RuntimeError, TypeError, ValueError):
        return "foreach"


def run_torch(p: Problem, mode: str, seed: int, device: str = "cpu") -> tuple[float, float]:
    """torch's loop on ``device`` (``cpu`` or ``cuda``); on CUDA the clock stops after a
    synchronize, so it counts the queued kernels, and the data's copy to the device."""
    import torch

    torch.manual_seed(seed)
    sw = _common.Stopwatch().__enter__()
    sizes = [p.X.shape[1], *p.hidden, p.n_classes]
    layers: list = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
        if p.keep_prob < 1:  # inverted dropout after each hidden layer, as the core does
            layers.append(torch.nn.Dropout(1 - p.keep_prob))
    model = torch.nn.Sequential(*layers[: -2 if p.keep_prob < 1 else -1]).to(device)
    with torch.no_grad():  # the core's "he" initializer: N(0, 2 / fan_in) weights, zero biases
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                layer.bias.zero_()
    kwargs = {"fused": True} if mode == "fused" else {"foreach": True}
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8, **kwargs)
    loss_fn = torch.nn.CrossEntropyLoss()
    X, y = torch.from_numpy(p.X).to(device), torch.from_numpy(p.y).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    m = len(X)
    for _ in range(p.epochs):
        perm = torch.randperm(m, generator=gen, device=device)
        Xs, ys = X[perm], y[perm]
        for i in range(0, m, BATCH):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xs[i : i + BATCH]), ys[i : i + BATCH])
            loss.backward()
            opt.step()
    if device != "cpu":
        torch.cuda.synchronize()
    sw.__exit__()
    model.eval()  # dropout off
    with torch.no_grad():
        predicted = model(torch.from_numpy(p.X_dev).to(device)).argmax(1).cpu().numpy()
    return sw.times, float((predicted != p.y_dev).mean())


def run_sklearn(p: Problem, seed: int) -> tuple[float, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        p.hidden,
        activation="relu",
        solver="adam",
        alpha=0.0,
        batch_size=BATCH,
        learning_rate_init=LR,
        max_iter=p.epochs,
        shuffle=True,
        random_state=seed,
        tol=0.0,
        n_iter_no_change=p.epochs + 1,
        early_stopping=False,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
    )
    with _common.Stopwatch() as sw, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(p.X, p.y)
    assert clf.n_iter_ == p.epochs
    return sw.times, float((clf.predict(p.X_dev) != p.y_dev).mean())


def load_ref_core(ref: str, tmp: Path):
    """``core`` as it was at a git revision, imported as the package ``core_ref``."""
    import importlib

    target = tmp / "core_ref"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(_common.ROOT), "archive", ref, "core"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    for f in (tmp / "core").iterdir():
        shutil.move(str(f), target / f.name)
    sys.path.insert(0, str(tmp))
    return importlib.import_module("core_ref.train"), importlib.import_module("core_ref.config")


def contestants(p: Problem, have_torch: bool, mode: str, ref, seed: int, errors: dict, loop):
    from core.config import TrainConfig
    from core.train import train

    def timed(name, fn):
        def run() -> tuple[float, float]:
            seconds, errors[name] = fn()
            return seconds

        return run

    out = {"ours": timed("ours", lambda: run_ours(p, train, TrainConfig, seed, loop))}
    if ref is not None:
        out["ours@ref"] = timed(
            "ours@ref", lambda: run_ours(p, ref[0].train, ref[1].TrainConfig, seed)
        )
    if have_torch:
        out["torch-default"] = timed("torch-default", lambda: run_torch(p, "default", seed))
        out[f"torch-{mode}"] = timed(f"torch-{mode}", lambda: run_torch(p, mode, seed))
    if p.keep_prob == 1:  # MLPClassifier has no dropout
        out["sklearn"] = timed("sklearn", lambda: run_sklearn(p, seed))
    return out


def report(
    p: Problem, times: dict[str, list[tuple[float, float]]], errors: dict, mode: str
) -> None:
    best = {k: min(cpu for _, cpu in v) for k, v in times.items()}
    rows = []
    for name, runs in times.items():
        lo, med = _common.summary([cpu for _, cpu in runs])
        wall = min(w for w, _ in runs)
        rows.append([name, lo, med, wall, lo / p.epochs * 1e3, errors[name], best["ours"] / lo])
    print(
        f"-- {p.name}: {p.X.shape[0]} x {p.X.shape[1]} train, {p.X_dev.shape[0]} dev, "
        f"hidden {list(p.hidden)}, {p.n_classes} classes, {p.epochs} epochs, batch {BATCH}, "
        f"{len(next(iter(times.values())))} rounds"
        + (f", dropout keep_prob {p.keep_prob} (no sklearn; the goals are for no dropout)" if p.keep_prob < 1 else "")
        + " --"
    )
    print(
        _common.table(
            [
                "contestant",
                "CPU s min",
                "CPU s median",
                "wall s min",
                "CPU ms/epoch",
                "dev error",
                "ours / this",
            ],
            rows,
        )
    )
    fused = f"torch-{mode}"

    def against_goal(ratio: float) -> str:
        if p.keep_prob < 1:
            return f"{ratio:.3f}"
        return f"{ratio:.3f} (goal <= {GOALS[p.name]}: {_common.verdict(ratio, GOALS[p.name])})"

    if fused in best:
        print(
            f"ours / torch-default = {best['ours'] / best['torch-default']:.3f}; "
            f"ours / {fused} = {against_goal(best['ours'] / best[fused])}"
            + (f"; ours / sklearn = {best['ours'] / best['sklearn']:.3f}" if "sklearn" in best else "")
        )
        print(f"  like for like, {LOOP} / {fused} = {against_goal(best[LOOP] / best[fused])}")
    if "ours@ref" in best:
        print(f"speedup of the core over --ref: {best['ours@ref'] / best['ours']:.2f}x")
    print(flush=True)


def main() -> None:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument(
        "--problems", default="digits,synthetic", help="comma-separated: digits, synthetic"
    )
    ap.add_argument("--epochs-digits", type=int, default=30)
    ap.add_argument("--epochs-synthetic", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5, help="timed runs of each contestant")
    ap.add_argument("--keep-prob", type=float, default=1.0,
                    help="dropout on every hidden layer, ours and torch's (below 1; sklearn is then skipped)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ref", help="also time core/ as at this git revision (e.g. f738b5b)")
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits

    _common.print_header("train_core: one thread each")
    try:
        import torch

        torch.set_num_threads(1)
        have_torch, mode = True, fused_mode(torch)
        support = "supported" if mode == "fused" else "unsupported, using foreach"
        print(
            f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
            f"Adam(fused=True) on CPU: {support}"
        )
    except ImportError:
        have_torch, mode = False, "fused"
        print("torch is not installed: PyTorch columns skipped (pip install torch==2.13.0)")
    import sklearn

    print(f"scikit-learn {sklearn.__version__}\n", flush=True)
    epochs = {"digits": args.epochs_digits, "synthetic": args.epochs_synthetic}
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1):
        ref = load_ref_core(args.ref, Path(tmp)) if args.ref else None
        for name in args.problems.split(","):
            p = dataclasses.replace(load_problem(name.strip(), epochs[name.strip()]), keep_prob=args.keep_prob)
            errors: dict = {}
            loop: list = []
            runners = contestants(p, have_torch, mode, ref, args.seed, errors, loop)
            for run in runners.values():  # warm-up: imports, first-call allocations
                run()
            loop.clear()
            times = _common.interleaved(runners, args.rounds)
            times = {"ours": times.pop("ours"), LOOP: loop, **times}
            errors[LOOP] = errors["ours"]
            report(p, times, errors, mode)
    _common.maybe_rerun_unset(args)


if __name__ == "__main__":
    main()
